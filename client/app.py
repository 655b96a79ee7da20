"""The site's Flower ClientApp: decode the request, run the round, reply or refuse."""

import logging
from pathlib import Path

import torch
import yaml
from flwr.app import Context, Error, Message
from flwr.clientapp import ClientApp

from client.site import RoundRefused
from client.site_config import site_from_context
from common.config import config_from_dict
from common.errors import UserError
from common.protocol import FAILED, REFUSED, decode_request, encode_reply

log = logging.getLogger("privsynth.site")
app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    try:
        request = decode_request(msg.content)
        config = config_from_dict(yaml.safe_load(request.config_yaml))
        torch.set_num_threads(config.runtime.threads_per_site)
        site = site_from_context(
            config, dict(context.node_config), context.node_id, Path(request.run_dir)
        )
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        result = site.run_round(
            config,
            request.round_request,
            request.generator,
            request.discriminator,
            device,
            # A SuperNode's console is the site operator's; simulated sites share the
            # terminal with the server's round bar.
            show_progress="data-path" in context.node_config,
        )
    except RoundRefused as refusal:
        log.warning("%s", refusal)
        return Message(error=Error(code=REFUSED, reason=str(refusal)), reply_to=msg)
    except UserError as error:
        log.error("%s", error)
        return Message(error=Error(code=FAILED, reason=str(error)), reply_to=msg)
    return Message(content=encode_reply(site.policy.name, result), reply_to=msg)
