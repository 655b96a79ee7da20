"""The server's side of federated DP-GAN training, independent of Flower.

The server owns the generator: each round it sends it to every site, averages the
generators that come back (weighted by the sites' example counts), optionally averages the
discriminators too (both are DP outputs), logs the round and checkpoints atomically. It
stops when the rounds are done or every site's budget is spent. With the mean_embedding
method there is one round: the sites' releases, to which the server fits the generator.
"""

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from common import atomic
from common.config import Config, config_to_yaml
from common.data.federation import label_space
from common.errors import UserError
from common.models import build_models
from common.protocol import RoundRequest, SiteReply, TrainRequest
from common.run_lock import run_folder_lock
from server.mean_embedding import fit_generator
from server.outputs import read_stats, write_outputs

CHECKPOINT = "checkpoint.pt"
STATS = "stats.jsonl"

StateDict = dict[str, torch.Tensor]


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


def weighted_average(states: list[StateDict], weights: list[float]) -> StateDict:
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    return {
        key: sum(state[key].double() * (w / total) for state, w in zip(states, weights)).to(
            states[0][key].dtype
        )
        for key in states[0]
    }


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


class FederationServer:
    def __init__(self, config: Config, run_dir: Path, resume: bool = False) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.class_names, self.multi_label = label_space(config)
        self.releases = config.training.method == "mean_embedding"
        self.rounds = 1 if self.releases else config.federation.rounds
        self.local_steps = 1 if self.releases else config.federation.local_steps
        self.planned_steps = self.rounds * self.local_steps
        if resume:
            self.state = self._load_checkpoint()
            self._drop_stats_after(self.state.round)
        else:
            self.state = self._fresh_state()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic.write_text(self.run_dir / "config.yaml", config_to_yaml(config))

    def new_models(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        torch.manual_seed(self.config.seed)
        return build_models(len(self.class_names), self.config.data.resolution, self.config.model)

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
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            raise UserError(f"cannot resume: {path} does not exist; start a new run instead")
        return ServerState(**torch.load(path, weights_only=True))

    def _drop_stats_after(self, last_round: int) -> None:
        """A kill between the stats line and the checkpoint leaves a round that will be
        run again; keep the log to the checkpointed rounds."""
        rows = [row for row in read_stats(self.run_dir) if row["round"] <= last_round]
        atomic.write_text(self.run_dir / STATS, "".join(json.dumps(r) + "\n" for r in rows))

    def save_checkpoint(self) -> None:
        atomic.torch_save(vars(self.state), self.run_dir / CHECKPOINT)

    # ---- one round ------------------------------------------------------------------

    def next_request(self) -> TrainRequest:
        return TrainRequest(
            round_request=RoundRequest(
                round=self.state.round + 1,
                local_steps=self.local_steps,
                planned_steps=self.planned_steps,
                share_discriminator=self.config.federation.share_discriminator,
            ),
            config_yaml=config_to_yaml(self.config),
            run_dir=str(self.run_dir.resolve()),
            generator=self.state.generator,
            discriminator=self.state.discriminator,
        )

    def apply(self, replies: list[SiteReply], failures: list[SiteFailure], seconds: float) -> dict:
        """Aggregate one round's replies, log it and checkpoint. Returns the round's stats."""
        state = self.state
        state.round += 1
        state.elapsed_s += seconds
        server_metrics = {}
        if replies and self.releases:
            started = time.perf_counter()
            state.generator, fit_loss = fit_generator(
                self.config,
                len(self.class_names),
                self.multi_label,
                state.generator,
                [reply.result.release for reply in replies],
            )
            state.generator_ema = state.generator
            server_metrics = {"fit_loss": fit_loss, "fit_seconds": time.perf_counter() - started}
            state.elapsed_s += server_metrics["fit_seconds"]
        elif replies:
            # Each site's DP size estimate: its exact count never leaves it.
            weights = [max(reply.result.metrics["unit_count_estimate"], 1.0) for reply in replies]
            state.generator = weighted_average([r.result.generator for r in replies], weights)
            # The average starts at the first aggregate: the random initial generator is
            # not an iterate worth averaging in (with decay 0.9 over 20 rounds it would keep
            # 12% of the weight).
            decay = self.config.output.generator_ema if state.round > 1 else 0.0
            state.generator_ema = weighted_average(
                [state.generator_ema, state.generator], [decay, 1 - decay]
            )
            # Sites whose policy keeps their discriminator reply without one.
            sharing = [i for i, r in enumerate(replies) if r.result.discriminator]
            if self.config.federation.share_discriminator and sharing:
                state.discriminator = weighted_average(
                    [replies[i].result.discriminator for i in sharing],
                    [weights[i] for i in sharing],
                )
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
        with open(self.run_dir / STATS, "a") as log:
            log.write(json.dumps(stats) + "\n")
        state.stop_reason = self._stop_reason(replies, failures)
        self.save_checkpoint()
        return stats

    def _stop_reason(self, replies: list[SiteReply], failures: list[SiteFailure]) -> str:
        if self.releases and replies:
            return f"fitted the generator to {len(replies)} site(s)' mean embeddings"
        # A release round nobody answered is not a completed run: report why below.
        if self.state.round >= self.rounds and not self.releases:
            return f"completed {self.rounds} rounds"
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
            total=self.rounds, initial=self.state.round, unit="round", desc="federation"
        ) as bar:
            while not self.state.stop_reason:
                if self.state.round >= self.rounds:
                    self.state.stop_reason = f"completed {self.rounds} rounds"
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
        sites = stats["sites"].values()
        if not sites:
            return "no replies"
        steps = max(int(s["steps"]) for s in sites)
        eps = ",".join(f"{float(s['epsilon']):.2f}" for s in sites)
        if self.releases:
            return f"released eps [{eps}] fit loss {stats['server']['fit_loss']:.4f}"
        g_loss = sum(float(s["g_loss"]) for s in sites) / len(sites)
        return f"local steps {steps}/{self.planned_steps} eps [{eps}] g_loss {g_loss:.2f}"

    def summary(self) -> dict:
        stats = read_stats(self.run_dir)
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
        )
