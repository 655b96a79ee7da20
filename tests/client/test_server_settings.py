"""What a deployed site takes from the server: every config key accounted for, the
threat model's table the same list, each value range-checked before any data is read."""

import re
from pathlib import Path

import pytest
import yaml

from client.server_settings import (
    REQUEST_FIELDS,
    SERVER_ONLY,
    SERVER_SUPPLIED,
    SITE_PINNED,
    check_request_fields,
    out_of_range,
)
from common.config import PRESET_DIR, Config, config_to_dict, load_config, set_dotted
from common.protocol import SiteError
from tests.helpers.neighbours import ask, deployed_site, neighbour_data
from tests.helpers.sites import encoded_requests

THREAT_MODEL = Path(__file__).resolve().parents[2] / "docs" / "threat-model.md"
PRESETS = sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def leaf_keys(raw: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(leaf_keys(value, f"{dotted}."))
        else:
            keys.append(dotted)
    return keys


def owners(key: str, source: str) -> list[str]:
    """The lists that claim `key`: by the key itself or a section above it. The data source's
    own options (`data.<source>`) are the site's data options."""
    key = re.sub(rf"^data\.{re.escape(source)}(\.|$)", r"data.options\1", key)
    claims = {"supplied": list(SERVER_SUPPLIED), "pinned": SITE_PINNED, "server": SERVER_ONLY}
    return [
        name
        for name, keys in claims.items()
        if any(key == claimed or key.startswith(f"{claimed}.") for claimed in keys)
    ]


@pytest.mark.parametrize("preset", ["defaults", *PRESETS])
def test_every_config_key_is_supplied_pinned_or_server_only(preset):
    config = Config() if preset == "defaults" else load_config(preset)

    unaccounted = {
        key: claims
        for key in leaf_keys(config_to_dict(config))
        if len(claims := owners(key, config.data.source)) != 1
    }

    assert unaccounted == {}


def test_the_threat_model_lists_exactly_what_the_server_supplies():
    rows = re.findall(r"^\s*\| `([a-z_.0-9]+)` \|", THREAT_MODEL.read_text(), re.MULTILINE)

    assert rows == list(SERVER_SUPPLIED)


@pytest.mark.parametrize("preset", PRESETS)
def test_the_presets_are_within_every_sites_ranges(preset):
    assert out_of_range(config_to_dict(load_config(preset))) == ""


def outside(key: str):
    """A value just outside the key's range (or not among its choices)."""
    allowed = SERVER_SUPPLIED.get(key) or REQUEST_FIELDS[key]
    if allowed.choices is not None:
        return "something-else"
    if allowed.low is None:
        return "yes"  # a flag that is not true or false
    return allowed.high * 2 + 1


@pytest.mark.parametrize("key", list(SERVER_SUPPLIED))
def test_each_server_setting_outside_its_range_is_named(key):
    raw = config_to_dict(Config())
    set_dotted(raw, key, outside(key))

    assert key in out_of_range(raw)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 1e-30])
def test_non_finite_and_tiny_bandwidths_are_out_of_range(value):
    raw = config_to_dict(Config())
    raw["mean_embedding"]["bandwidth"] = [0.25, value]

    assert "mean_embedding.bandwidth" in out_of_range(raw)


@pytest.mark.parametrize("key", list(REQUEST_FIELDS))
def test_each_request_field_outside_its_range_is_named(key):
    fields = {"round": 1, "local_steps": 2, "planned_steps": 4, "share_discriminator": True}
    fields[key] = outside(key)

    assert key in check_request_fields(fields)


def test_a_setting_out_of_range_is_refused_before_the_data_is_read(tmp_path):
    # Unreadable data: had the site read it, it would answer with the site-data-error code.
    node_config = deployed_site(tmp_path, neighbour_data(drop="none"), "image")
    (tmp_path / "data.npz").write_bytes(b"not a MedMNIST file")
    request = encoded_requests("mean_embedding")[0]
    config = yaml.safe_load(request["request"]["config"])
    config["mean_embedding"]["bandwidth"] = 1.01e-38
    request["request"]["config"] = yaml.safe_dump(config)

    assert ask(node_config, request) == SiteError.MALFORMED_REQUEST
    assert ask(node_config, encoded_requests("mean_embedding")[0]) == SiteError.SITE_DATA_ERROR
