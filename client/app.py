"""The site's Flower ClientApp: check the request, run the round, reply or refuse."""

import logging
import math

import torch
import yaml
from flwr.app import Context, Error, Message
from flwr.clientapp import ClientApp

from client.guard import check_request_message
from client.site import RoundRefused
from client.site_config import is_deployed, site_from_context, site_settings
from common.config import config_from_dict
from common.errors import UserError
from common.protocol import FAILED, REFUSED, decode_request, encode_reply

log = logging.getLogger("privsynth.site")
app = ClientApp()


def _refuse(msg: Message, reason: str) -> Message:
    log.warning("%s", reason)
    return Message(error=Error(code=REFUSED, reason=reason), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    node_config = dict(context.node_config)
    name = str(node_config.get("site-name", f"node-{context.node_id}"))
    try:
        settings = site_settings(node_config)
        # Simulated sites trust the local server; a hospital sets its own limit.
        limit = settings.max_request_mb * 2**20 if settings else math.inf
        check_request_message(msg, name, limit)
        request = decode_request(msg.content)
        config = config_from_dict(yaml.safe_load(request.config_yaml))
        torch.set_num_threads(config.runtime.threads_per_site)
        site = site_from_context(config, node_config, context.node_id, request.run_dir, settings)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        result = site.run_round(
            config,
            request.round_request,
            request.generator,
            request.discriminator,
            device,
            # A SuperNode's console is the site operator's; simulated sites share the
            # terminal with the server's round bar.
            show_progress=is_deployed(node_config),
        )
    except RoundRefused as refusal:
        return _refuse(msg, str(refusal))
    except UserError as error:
        log.error("%s", error)
        return Message(error=Error(code=FAILED, reason=str(error)), reply_to=msg)
    return Message(content=encode_reply(site.policy.name, result), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return _refuse(msg, "this site answers only train requests; evaluate is refused")


@app.query()
def query(msg: Message, context: Context) -> Message:
    return _refuse(msg, "this site answers only train requests; query is refused")
