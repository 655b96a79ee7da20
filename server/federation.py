"""The server's side of federated training, independent of Flower.

The server owns the generator: each round it sends a request to every site and hands the
replies to the training method (methods/), which updates the generator; the server logs the
round, checkpoints atomically and stops when the method is finished, every site's budget is
spent or too few sites answer.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from common.config import Config, config_to_yaml
from common.data.federation import label_space
from common.device import resolve_device
from common.errors import UserError
from common.models import build_models
from common.prior.file import load_prior, start_from
from common.protocol import RoundRequest, SiteReply, TrainRequest
from common.run_folder import RunFolder
from common.run_lock import run_folder_lock
from methods import method_for
from server.averaging import StateDict
from server.outputs import write_outputs


@dataclass(frozen=True)
class SiteFailure:
    node_id: int
    reason: str
    refused: bool


# Sends a request to every connected site except the given node IDs; returns replies and
# failures (errors, refusals, time-outs).
Exchange = Callable[[TrainRequest, set[int]], tuple[list[SiteReply], list[SiteFailure]]]


@dataclass
class ServerState:
    round: int
    generator: StateDict
    generator_ema: StateDict
    discriminator: StateDict | None
    site_epsilon: dict[str, float] = field(default_factory=dict)
    site_exhausted: dict[str, bool] = field(default_factory=dict)
    elapsed_s: float = 0.0
    stop_reason: str = ""


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


class FederationServer:
    def __init__(self, config: Config, run_dir: Path, resume: bool = False) -> None:
        self.config = config
        # Where the server's own work runs (a method's fit, the outputs): resolved once a run.
        self.device = resolve_device(config.runtime.device)
        self.run_dir = Path(run_dir)
        self.folder = RunFolder(self.run_dir)
        self.class_names, self.multi_label = label_space(config)
        self.method = method_for(config)
        self.schedule = self.method.schedule(config)
        if resume:
            self.state = self._load_checkpoint()
            # A kill between the stats line and the checkpoint leaves a round that will be
            # run again; keep the log to the checkpointed rounds.
            self.folder.keep_stats_until(self.state.round)
        else:
            self.state = self._fresh_state()
            self.folder.write_config(config)

    def new_models(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The initial generator and discriminator: the public prior's (model.prior), or
        random."""
        torch.manual_seed(self.config.seed)
        config = self.config
        generator, discriminator = build_models(
            len(self.class_names), config.data.resolution, config.model
        )
        if config.model.prior:
            start_from(
                load_prior(config.model.prior, config),
                generator,
                discriminator,
                class_names=self.class_names,
                multi_label=self.multi_label,
            )
        return generator, discriminator

    def _fresh_state(self) -> ServerState:
        generator, discriminator = self.new_models()
        g_state = generator.state_dict()
        return ServerState(
            round=0,
            generator=g_state,
            generator_ema={k: v.clone() for k, v in g_state.items()},
            discriminator=(
                discriminator.state_dict() if self.config.federation.share_discriminator else None
            ),
        )

    def _load_checkpoint(self) -> ServerState:
        path = self.folder.checkpoint_file
        if not self.folder.resumable:
            raise UserError(f"cannot resume: {path} does not exist; start a new run instead")
        return ServerState(**self.folder.load_checkpoint())

    def save_checkpoint(self) -> None:
        self.folder.save_checkpoint(vars(self.state))

    # ---- one round ------------------------------------------------------------------

    def next_request(self) -> TrainRequest:
        generator, discriminator = self.method.request_models(self)
        return TrainRequest(
            round_request=RoundRequest(
                round=self.state.round + 1,
                local_steps=self.schedule.local_steps,
                planned_steps=self.schedule.planned_steps,
                share_discriminator=self.config.federation.share_discriminator,
            ),
            config_yaml=config_to_yaml(self.config),
            run_dir=str(self.run_dir.resolve()),
            generator=generator,
            discriminator=discriminator,
        )

    def apply(self, replies: list[SiteReply], failures: list[SiteFailure], seconds: float) -> dict:
        """Aggregate one round's replies, log it and checkpoint. Returns the round's stats."""
        state = self.state
        state.round += 1
        state.elapsed_s += seconds
        server_metrics = self.method.aggregate(self, replies) if replies else {}
        for reply in replies:
            metrics = reply.result.metrics
            state.site_epsilon[reply.site] = metrics["epsilon"]
            state.site_exhausted[reply.site] = bool(metrics["budget_exhausted"])
        stats = {
            "round": state.round,
            "seconds": seconds,
            "elapsed_s": state.elapsed_s,
            "sites": {
                reply.site: {key: _finite(value) for key, value in reply.result.metrics.items()}
                for reply in replies
            },
            "failures": [
                {"node_id": f.node_id, "refused": f.refused, "reason": f.reason} for f in failures
            ],
            **({"server": server_metrics} if server_metrics else {}),
        }
        self.folder.append_stats(stats)
        state.stop_reason = self._stop_reason(replies, failures)
        self.save_checkpoint()
        return stats

    def _stop_reason(self, replies: list[SiteReply], failures: list[SiteFailure]) -> str:
        finished = self.method.finished(self, replies)
        if finished:
            return finished
        if self.state.site_exhausted and all(self.state.site_exhausted.values()) and not failures:
            return "every site's privacy budget is spent"
        if len(replies) < self.config.federation.min_sites:
            reasons = "; ".join(f.reason for f in failures) or "no site replied"
            if failures and all(f.refused for f in failures):
                return f"every site refused: {reasons}"
            return (
                f"only {len(replies)} site(s) replied, fewer than federation.min_sites="
                f"{self.config.federation.min_sites}: {reasons}"
            )
        return ""

    # ---- the loop -------------------------------------------------------------------

    def run(self, exchange: Exchange) -> ServerState:
        """Rounds until a stop condition; `exchange` sends a request to every site."""
        # A resumed run re-checks why it stopped: it may have been given more rounds.
        self.state.stop_reason = ""
        with tqdm(
            total=self.schedule.rounds, initial=self.state.round, unit="round", desc="federation"
        ) as bar:
            while not self.state.stop_reason:
                if self.state.round >= self.schedule.rounds:
                    self.state.stop_reason = f"completed {self.schedule.rounds} rounds"
                    break
                started = time.perf_counter()
                replies, failures = self._collect(exchange)
                stats = self.apply(replies, failures, time.perf_counter() - started)
                bar.update(1)
                bar.set_postfix_str(self._progress_text(stats))
                for failure in failures:
                    tqdm.write(f"round {stats['round']}: node {failure.node_id}: {failure.reason}")
        return self.state

    def _collect(self, exchange: Exchange) -> tuple[list[SiteReply], list[SiteFailure]]:
        """One round's replies. Below min_sites, the sites that did not answer are asked
        again (those that answered keep their reply: asking them twice would spend their
        budget twice); sites that refused are not asked again."""
        federation = self.config.federation
        request = self.next_request()
        replies, failures = exchange(request, set())
        for attempt in range(1, federation.round_retries + 1):
            if len(replies) >= federation.min_sites or all(f.refused for f in failures):
                break
            tqdm.write(
                f"round {request.round_request.round}: {len(replies)} site(s) replied, "
                f"fewer than federation.min_sites={federation.min_sites}; asking the others "
                f"again in {federation.retry_wait_s:g}s ({attempt}/{federation.round_retries})"
            )
            time.sleep(federation.retry_wait_s)
            answered = {reply.node_id for reply in replies}
            refused = [f for f in failures if f.refused]
            more, failures = exchange(request, answered | {f.node_id for f in refused})
            replies += more
            failures = refused + failures
        return replies, failures

    def _progress_text(self, stats: dict) -> str:
        if not stats["sites"]:
            return "no replies"
        return self.method.progress_text(stats, self.schedule)

    def summary(self) -> dict:
        stats = self.folder.read_stats()
        last = {}
        for row in stats:
            for site, metrics in row["sites"].items():
                last[site] = metrics
        return {
            "name": self.config.name,
            "run_dir": str(self.run_dir),
            "stop_reason": self.state.stop_reason,
            "rounds": self.state.round,
            "training_time_s": round(self.state.elapsed_s, 1),
            "epsilon_per_site": dict(sorted(self.state.site_epsilon.items())),
            "delta_per_site": {site: m["delta"] for site, m in sorted(last.items())},
            "noise_multiplier_per_site": {
                site: m["noise_multiplier"] for site, m in sorted(last.items())
            },
            "final_losses": {
                site: {key: m[key] for key in ("g_loss", "d_loss_fake") if key in m}
                for site, m in sorted(last.items())
            },
            "class_names": list(self.class_names),
            "multi_label": self.multi_label,
        }


def run_federation(
    config: Config,
    run_dir: Path,
    resume: bool,
    exchange: Exchange,
) -> dict:
    """Train until a stop condition, then write the run's outputs. Returns the summary."""
    with run_folder_lock(run_dir):
        server = FederationServer(config, run_dir, resume)
        state = server.run(exchange)
        return write_outputs(
            config,
            server.run_dir,
            server.class_names,
            server.multi_label,
            state.generator_ema,
            server.summary(),
            loss_curves=server.method.loss_curves,
            device=server.device,
        )
