"""Checks on a raw request message before the site decodes or trusts any of it."""

from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from client.server_settings import check_request_fields
from client.site import RoundRefused
from common.protocol import SiteError

REQUEST_FIELDS = {
    "round": int,
    "local_steps": int,
    "planned_steps": int,
    "share_discriminator": bool,
    "config": str,
    "run_dir": str,
}


def payload_bytes(content: RecordDict) -> int:
    total = 0
    for record in content.values():
        if isinstance(record, ArrayRecord):
            total += sum(len(array.data) for array in record.values())
        elif isinstance(record, ConfigRecord):
            total += sum(len(value) for value in record.values() if isinstance(value, str | bytes))
    return total


def check_request_content(content: RecordDict, site: str, limit_bytes: float) -> None:
    """Refuse an oversized request or one whose records are not exactly the protocol's."""
    refuse = f"site {site} refuses the request"
    size = payload_bytes(content)
    if size > limit_bytes:
        raise RoundRefused(
            SiteError.MALFORMED_REQUEST,
            f"{refuse}: its payload is {size / 2**20:.1f} MB, above the site's limit of "
            f"{limit_bytes / 2**20:.1f} MB (max_request_mb in site.yaml)",
        )
    expected = {"generator": ArrayRecord, "request": ConfigRecord}
    optional = {"discriminator": ArrayRecord}
    for name in content:
        kind = expected.get(name) or optional.get(name)
        if kind is None or not isinstance(content[name], kind):
            raise RoundRefused(
                SiteError.MALFORMED_REQUEST,
                f"{refuse}: malformed request (unexpected record {name!r})",
            )
    for name in expected:
        if name not in content:
            raise RoundRefused(
                SiteError.MALFORMED_REQUEST, f"{refuse}: malformed request (no {name!r} record)"
            )
    fields = content["request"]
    for key, kind in REQUEST_FIELDS.items():
        if key not in fields or not isinstance(fields[key], kind):
            raise RoundRefused(
                SiteError.MALFORMED_REQUEST,
                f"{refuse}: malformed request (field {key!r} missing or not {kind.__name__})",
            )
    unknown = sorted(set(fields) - set(REQUEST_FIELDS))
    if unknown:
        raise RoundRefused(
            SiteError.MALFORMED_REQUEST,
            f"{refuse}: malformed request (unknown field {unknown[0]!r})",
        )
    problem = check_request_fields(dict(fields))
    if problem:
        raise RoundRefused(SiteError.MALFORMED_REQUEST, f"{refuse}: {problem}")
