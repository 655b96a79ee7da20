"""Method `mean_embedding_dpgan`: each site first releases its per-class mean embedding once,
spending `training.release_share` of its epsilon, and the server fits the generator to the
releases (as mean_embedding does); then, from that generator, the sites train DP-SGD
discriminators and the generator through them for `federation.rounds` rounds (as dpgan does)
with the rest of the budget. The mean embedding gives the generator the images' layout and
class statistics cheaply; the discriminator rounds add the detail it cannot see.

A site calibrates the DP-SGD noise over everything its ledger holds, the release included,
so the two parts compose within its budget by the ledger's accountant.
"""

from common.config import Config, SiteBudget
from common.privacy.accounting import calibrate_release_noise
from common.protocol import RoundResult, SiteReply
from methods.base import METHODS, SIMULATION_START_S, NoisePlan, Schedule, StateDict
from methods.dpgan import DPGAN, plan_sgd_noise
from methods.mean_embedding import MeanEmbedding, release_round

RELEASE_ROUND = 1


class MeanEmbeddingDPGAN:
    name = "mean_embedding_dpgan"
    ledger_mechanisms = ("release", "dp-sgd")
    loss_curves = DPGAN.loss_curves

    def __init__(self) -> None:
        self.release = MeanEmbedding()
        self.dpgan = DPGAN()

    def schedule(self, config: Config) -> Schedule:
        federation = config.federation
        return Schedule(1 + federation.rounds, federation.local_steps, release_rounds=1)

    def describe(self, schedule: Schedule) -> str:
        return f"one mean-embedding release, then {schedule.planned_steps} DP steps"

    def plan_noise(self, config: Config, *, units: int, budget: SiteBudget) -> NoisePlan:
        release_sigma = calibrate_release_noise(
            history=[],
            target_epsilon=config.training.release_share * budget.target_epsilon,
            delta=budget.delta,
            accountant=config.privacy.accountant,
        )
        return plan_sgd_noise(
            config,
            units=units,
            budget=budget,
            steps=self.schedule(config).planned_steps,
            history=((release_sigma, 1.0, 1),),
        )

    def request_models(self, server) -> tuple[StateDict, StateDict | None]:
        if server.state.round + 1 == RELEASE_ROUND:
            return self.release.request_models(server)
        return self.dpgan.request_models(server)

    def site_round(
        self, site, config, request, generator, discriminator, *, device, show_progress
    ) -> RoundResult:
        if request.round == RELEASE_ROUND:
            return release_round(
                site,
                config,
                request,
                target_epsilon=config.training.release_share * site.policy.budget.target_epsilon,
                last=False,
                device=device,
            )
        return self.dpgan.site_round(
            site,
            config,
            request,
            generator,
            discriminator,
            device=device,
            show_progress=show_progress,
        )

    def aggregate(self, server, replies: list[SiteReply]) -> dict:
        if server.state.round == RELEASE_ROUND:
            return self.release.aggregate(server, replies)
        return self.dpgan.aggregate(server, replies)

    def finished(self, server, replies: list[SiteReply]) -> str:
        rounds = server.schedule.rounds
        if server.state.round >= rounds:
            return f"fitted the generator to the releases, then completed {rounds - 1} rounds"
        return ""

    def progress_text(self, stats: dict, schedule: Schedule) -> str:
        if stats["round"] == RELEASE_ROUND:
            return self.release.progress_text(stats, schedule)
        return self.dpgan.progress_text(stats, schedule)

    def estimate_seconds(self, config: Config) -> float:
        """The release and fit, then the DP rounds; the simulation starts once."""
        return (
            self.release.estimate_seconds(config)
            + self.dpgan.estimate_seconds(config)
            - SIMULATION_START_S
        )


METHODS.register(MeanEmbeddingDPGAN.name)(MeanEmbeddingDPGAN())
