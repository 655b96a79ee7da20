"""The Flower ServerApp: send each round's request to the sites, collect replies."""

import logging
import time
from pathlib import Path

from flwr.app import Context, Message, MessageType
from flwr.serverapp import Grid, ServerApp

from common.config import FederationConfig, load_config
from common.errors import UserError
from common.protocol import ERROR_REASONS, REFUSALS, TrainRequest, decode_reply, encode_request
from common.run_folder import RunFolder
from server.federation import SiteFailure, run_federation

log = logging.getLogger("privsynth.server")
NODE_WAIT_S = 120.0


def wait_for_sites(grid: Grid, federation: FederationConfig, patience_s: float) -> list[int]:
    """All expected sites, or at least min_sites once `patience_s` seconds have passed."""
    deadline = time.monotonic() + patience_s
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= federation.num_sites:
            return nodes
        if time.monotonic() > deadline and len(nodes) >= federation.min_sites:
            return nodes
        if time.monotonic() > deadline + NODE_WAIT_S:
            raise UserError(
                f"only {len(nodes)} of {federation.num_sites} sites connected within "
                f"{patience_s + NODE_WAIT_S:.0f}s (federation.min_sites={federation.min_sites})"
            )
        time.sleep(1.0)


def site_failure(node: int, code: int, reason: str) -> SiteFailure:
    """A site's error code in the protocol's own words; other codes come from Flower (e.g. a
    site that stopped), whose reason is the SuperLink's, not the site's."""
    if code in ERROR_REASONS:
        return SiteFailure(node, f"{ERROR_REASONS[code]} (code {code})", code in REFUSALS)
    return SiteFailure(node, reason, False)


class SiteExchange:
    """Sends a round's request to the connected sites and sorts replies from failures.

    Before the first round it waits up to NODE_WAIT_S for every site; later a lost site
    does not hold up the others when at least min_sites are connected.
    """

    def __init__(self, grid: Grid, federation: FederationConfig) -> None:
        self.grid = grid
        self.federation = federation
        self.patience_s = NODE_WAIT_S

    def __call__(self, request: TrainRequest, skip: set[int]) -> tuple[list, list[SiteFailure]]:
        connected = wait_for_sites(self.grid, self.federation, self.patience_s)
        self.patience_s = 0.0
        nodes = [node for node in connected if node not in skip]
        messages = [
            Message(
                content=encode_request(request), dst_node_id=node, message_type=MessageType.TRAIN
            )
            for node in nodes
        ]
        replies, failures, answered = [], [], set()
        received = self.grid.send_and_receive(messages, timeout=self.federation.round_timeout_s)
        # Sending sets each message's id. A reply comes from its site, but an error the
        # SuperLink writes itself (e.g. for a site that stopped) comes from the SuperLink's
        # own node id: name the site the request went to.
        destination = {message.metadata.message_id: node for message, node in zip(messages, nodes)}
        for reply in received:
            node = destination.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
            answered.add(node)
            if reply.has_error():
                failures.append(site_failure(node, reply.error.code, str(reply.error.reason)))
            else:
                replies.append(decode_reply(reply))
        for node in set(nodes) - answered:
            failures.append(SiteFailure(node, "no reply within federation.round_timeout_s", False))
        return replies, failures


def build_server_app(settings: dict | None = None) -> ServerApp:
    """A ServerApp; `settings` (config, overrides, run-dir, resume) override the run config."""
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        run_config = {**context.run_config, **(settings or {})}
        run_dir_text = str(run_config.get("run-dir", ""))
        resume = bool(run_config.get("resume", False))
        try:
            if resume and not run_dir_text:
                raise UserError("resume=true needs run-dir, the folder of the run to continue")
            config = load_config(
                str(RunFolder(run_dir_text).config_file) if resume else str(run_config["config"]),
                [o for o in str(run_config.get("overrides", "")).split(";") if o.strip()],
            )
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = Path(run_dir_text or Path(config.output.dir) / f"{config.name}-{stamp}")
            run_federation(config, run_dir, resume, SiteExchange(grid, config.federation))
        except UserError as error:
            log.error("%s", error)
            # `privsynth run` reports it from the run folder: the ServerApp runs in Flower's
            # process, whose log is not the user's terminal.
            if run_dir_text:
                RunFolder(run_dir_text).write_error(str(error))
            raise

    return server_app


app = build_server_app()
