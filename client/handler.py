"""A site's answer to one train request, without Flower's runtime: the reply's content, or
one of the protocol's fixed error codes.

Whatever goes wrong, the server learns only the code (common.protocol.ERROR_REASONS); the
full message, which may name files, labels or patients, goes to the site's own console and,
for a deployed site, to the log in its state directory (SiteFolder.log).
"""

import logging
import math
import time
from pathlib import Path

import torch
import yaml
from flwr.app import RecordDict

from client.guard import check_request_content
from client.server_settings import check_server_settings
from client.site import RoundRefused, weights_problem
from client.site_config import (
    is_deployed,
    site_device,
    site_from_context,
    site_settings,
    with_site_prior,
)
from client.site_settings import SiteSettings
from common.config import config_from_dict
from common.errors import UserError
from common.protocol import SiteError, decode_request, encode_reply
from common.run_folder import SiteFolder

log = logging.getLogger("privsynth.site")


class _Failure(Exception):
    def __init__(self, code: SiteError, message: str) -> None:
        super().__init__(message)
        self.code = code


def _stage(code: SiteError, action, *args, **kwargs):
    """Run one step of the answer; a user error there becomes `code`."""
    try:
        return action(*args, **kwargs)
    except RoundRefused:
        raise
    except UserError as error:
        raise _Failure(code, str(error)) from None


def answer_train(content: RecordDict, *, node_config: dict, node_id: int) -> RecordDict | SiteError:
    """The reply to a train request, or the error code to send instead."""
    name = str(node_config.get("site-name", f"node-{node_id}"))
    state = None
    try:
        settings = _stage(SiteError.REFUSED_POLICY, site_settings, node_config)
        if settings is not None:
            state = SiteFolder(Path(settings.state_dir).expanduser())
            name = settings.name or name
        # Simulated sites trust the local server; a hospital sets its own limit.
        limit = settings.max_request_mb * 2**20 if settings else math.inf
        check_request_content(content, name, limit)
        request = _stage(SiteError.MALFORMED_REQUEST, decode_request, content)
        config = _stage(SiteError.MALFORMED_REQUEST, _parse_config, request.config_yaml)
        if settings is not None:
            config = _stage(SiteError.REFUSED_POLICY, with_site_prior, config, settings, name)
        # Every number from the server within the site's ranges, and the weights the model's,
        # before any data is read.
        _check_before_data(config, request, settings, name)
        torch.set_num_threads(config.runtime.threads_per_site)
        # Like its other settings, a missing GPU the site asked for refuses the round.
        device = _stage(SiteError.REFUSED_POLICY, site_device, config, settings)
        site = _stage(
            SiteError.SITE_DATA_ERROR,
            site_from_context,
            config,
            node_config,
            node_id,
            request.run_dir,
            settings,
        )
        result = _stage(
            SiteError.SITE_DATA_ERROR,
            site.run_round,
            config,
            request.round_request,
            request.generator,
            request.discriminator,
            device,
            # A SuperNode's console is the site operator's; simulated sites share the
            # terminal with the server's round bar.
            show_progress=is_deployed(node_config),
        )
    except (RoundRefused, _Failure) as error:
        _log_locally(state, f"site {name}: {error}", warning=True)
        return error.code
    except Exception as error:  # noqa: BLE001 - nothing unforeseen may reach the server as text
        log.exception("site %s: internal error", name)
        _log_locally(state, f"site {name}: internal error: {error!r}", warning=False)
        return SiteError.INTERNAL_ERROR
    return encode_reply(site.policy.name, result)


def _check_before_data(config, request, settings: SiteSettings | None, name: str) -> None:
    problem = check_server_settings(config)
    if not problem and settings is not None:
        # A deployed site's classes are the ones it declares, so the check needs no data.
        problem = weights_problem(
            config,
            request.generator,
            request.discriminator,
            num_classes=len(settings.class_names),
            resolution=config.data.resolution,
        )
    if problem:
        raise RoundRefused(
            SiteError.MALFORMED_REQUEST, f"site {name} refuses the request: {problem}"
        )


def _parse_config(text: str):
    try:
        return config_from_dict(yaml.safe_load(text))
    except yaml.YAMLError as error:
        raise UserError(f"the request's config is not valid YAML ({error})") from None


def _log_locally(state: SiteFolder | None, message: str, *, warning: bool) -> None:
    if warning:
        log.warning("%s", message)
    if state is None:
        return
    state.path.mkdir(parents=True, exist_ok=True)
    with open(state.log, "a") as handle:
        handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
