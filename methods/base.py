"""The seam between training methods: what a method plans, what its site does in a round,
what its requests carry and how the server turns replies into a generator.

One module per method implements TrainingMethod and registers itself in METHODS; the site,
the server and the CLI plan go through it and never test a method's name.
"""

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from common.config import Config, SiteBudget
from common.protocol import RoundRequest, RoundResult, SiteReply
from common.registry import Registry

if TYPE_CHECKING:
    from client.site import Site
    from server.federation import FederationServer

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Schedule:
    """Rounds the server runs and the DP steps a site takes in each (1 for a release); the
    first `release_rounds` of them are releases, not DP-SGD steps."""

    rounds: int
    local_steps: int
    release_rounds: int = 0

    @property
    def planned_steps(self) -> int:
        """The DP-SGD steps a site plans its noise for (or the release's 1)."""
        return max(self.rounds - self.release_rounds, 1) * self.local_steps


@dataclass(frozen=True)
class NoisePlan:
    """What a site with `units` privacy units would be calibrated to, before it runs."""

    sample_rate: float
    noise_multiplier: float


class TrainingMethod(Protocol):
    name: str
    # The ledger mechanisms a site's rounds record ("dp-sgd", "release"): which audits apply.
    ledger_mechanisms: tuple[str, ...]
    # (label, metric key) of the per-site losses the training plot draws; () if none.
    loss_curves: tuple[tuple[str, str], ...]

    def schedule(self, config: Config) -> Schedule:
        """How many rounds, and DP steps per round, the server asks for."""

    def describe(self, schedule: Schedule) -> str:
        """The plan's mechanism in words, e.g. '400 DP steps'."""

    def plan_noise(self, config: Config, *, units: int, budget: SiteBudget) -> NoisePlan:
        """The sample rate and noise a site would use (the dry-run plan)."""

    def request_models(self, server: "FederationServer") -> tuple[StateDict, StateDict | None]:
        """The generator and discriminator weights a request carries (empty if unused)."""

    def site_round(
        self,
        site: "Site",
        config: Config,
        request: RoundRequest,
        generator: StateDict,
        discriminator: StateDict | None,
        *,
        device: torch.device,
        show_progress: bool,
    ) -> RoundResult:
        """The site's DP work for one request, recorded in its ledger before it is done."""

    def aggregate(self, server: "FederationServer", replies: list[SiteReply]) -> dict:
        """Update the server's generator from the replies; the server's own metrics."""

    def finished(self, server: "FederationServer", replies: list[SiteReply]) -> str:
        """Why the run is complete after this round, or '' if it is not."""

    def progress_text(self, stats: dict, schedule: Schedule) -> str:
        """The round bar's text for one round's stats."""

    def estimate_seconds(self, config: Config) -> float:
        """The run's expected wall time on this machine, from a short timed probe on its
        runtime.device."""


# A simulation's fixed cost (Ray and the Flower engine starting, outputs written) and its cost per
# round (messages, checkpoint), in seconds: what a run pays beyond the methods' own work.
SIMULATION_START_S = 25.0
ROUND_OVERHEAD_S = 3.0


def parallel_sites(config: Config) -> int:
    """How many simulated sites work at once on this machine's cores."""
    return max(1, min(config.federation.num_sites, os.cpu_count() or 1))


METHODS: Registry[TrainingMethod] = Registry("training method")


def method_for(config: Config) -> TrainingMethod:
    return METHODS.get(config.training.method)
