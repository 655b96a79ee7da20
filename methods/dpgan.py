"""Method `dpgan`: each site trains a DP-SGD discriminator (and the generator through it) for
`federation.local_steps` steps a round; the server averages the generators.

The site estimates its unit count once (Gaussian mechanism, in its ledger) and calibrates its
noise for the planned steps from that estimate; the server weights each site's generator by
the same estimate.
"""

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from client.training import DPGANTrainer, DPSettings
from common import atomic
from common.config import Config, SiteBudget
from common.device import resolve_device
from common.prior.file import start_from
from common.privacy.accounting import (
    EPSILON_SLACK,
    SIZE_ESTIMATE,
    SIZE_NOISE_MULTIPLIER,
    calibrate_noise_multiplier,
    epsilon_spent,
)
from common.privacy.ledger import PrivacyLedger
from common.protocol import RoundRequest, RoundResult, SiteError, SiteReply
from methods.base import (
    METHODS,
    ROUND_OVERHEAD_S,
    SIMULATION_START_S,
    NoisePlan,
    Schedule,
    StateDict,
    parallel_sites,
)
from server.averaging import weighted_average


def os_normal() -> float:
    """A standard normal draw seeded from the OS: noise the server could regenerate from a
    config seed would be none."""
    return float(np.random.default_rng(np.random.SeedSequence().entropy).standard_normal())


class DPGAN:
    name = "dpgan"
    ledger_mechanisms = ("dp-sgd",)
    loss_curves = (("G", "g_loss"), ("D (generated)", "d_loss_fake"))

    def schedule(self, config: Config) -> Schedule:
        return Schedule(config.federation.rounds, config.federation.local_steps)

    def describe(self, schedule: Schedule) -> str:
        return f"{schedule.planned_steps} DP steps"

    def plan_noise(self, config: Config, *, units: int, budget: SiteBudget) -> NoisePlan:
        return plan_sgd_noise(
            config, units=units, budget=budget, steps=self.schedule(config).planned_steps
        )

    def request_models(self, server) -> tuple[StateDict, StateDict | None]:
        return server.state.generator, server.state.discriminator

    # ---- the site ---------------------------------------------------------------------

    def site_round(
        self, site, config, request, generator, discriminator, *, device, show_progress
    ) -> RoundResult:
        if not generator:
            raise site.refuse(SiteError.MALFORMED_REQUEST, request.round, "no generator weights")
        site.check_weights(config, request, generator, discriminator)
        ledger = site.open_ledger()
        with ledger.transaction():
            estimate_size(site, ledger, request.round)
        # Calibration, the budget check and the entry in one transaction: another process on
        # this ledger cannot spend in between.
        with ledger.transaction():
            calibrate(site, ledger, config, request)
            spent = ledger.epsilon()
            after = ledger.epsilon_after(request.local_steps)
            if after > site.policy.max_epsilon + EPSILON_SLACK:
                raise site.refuse(
                    SiteError.REFUSED_BUDGET,
                    request.round,
                    f"{request.local_steps} more steps would raise its epsilon from {spent:.3f} "
                    f"to {after:.3f}, above its maximum {site.policy.max_epsilon:g} "
                    f"(delta={ledger.delta:g})",
                )
            # Recorded before training: a crash mid-round can only over-count.
            ledger.record(
                round_number=request.round,
                steps=request.local_steps,
                prior=site.prior.sha256 if site.prior else "",
            )
        return train(site, ledger, config, request, generator, discriminator, device, show_progress)

    # ---- the server -------------------------------------------------------------------

    def aggregate(self, server, replies: list[SiteReply]) -> dict:
        state = server.state
        # Each site's DP size estimate: its exact count never leaves it.
        weights = [max(reply.result.metrics["unit_count_estimate"], 1.0) for reply in replies]
        state.generator = weighted_average([r.result.generator for r in replies], weights)
        # The average starts at the first aggregate: the random initial generator is not an
        # iterate worth averaging in (with decay 0.9 over 20 rounds it would keep 12%).
        decay = server.config.output.generator_ema if state.round > 1 else 0.0
        state.generator_ema = weighted_average(
            [state.generator_ema, state.generator], [decay, 1 - decay]
        )
        # Sites whose policy keeps their discriminator reply without one.
        sharing = [i for i, r in enumerate(replies) if r.result.discriminator]
        if server.config.federation.share_discriminator and sharing:
            state.discriminator = weighted_average(
                [replies[i].result.discriminator for i in sharing], [weights[i] for i in sharing]
            )
        return {}

    def finished(self, server, replies: list[SiteReply]) -> str:
        rounds = server.schedule.rounds
        return f"completed {rounds} rounds" if server.state.round >= rounds else ""

    def progress_text(self, stats: dict, schedule: Schedule) -> str:
        sites = stats["sites"].values()
        steps = max(int(s["steps"]) for s in sites)
        eps = ",".join(f"{float(s['epsilon']):.2f}" for s in sites)
        g_loss = sum(float(s["g_loss"]) for s in sites) / len(sites)
        return f"local steps {steps}/{schedule.planned_steps} eps [{eps}] g_loss {g_loss:.2f}"

    def estimate_seconds(self, config: Config, *, probe_steps: int = 6) -> float:
        """A few of one site's DP steps timed on its data on runtime.device; the sites share
        the cores."""
        # Imported here: client.site dispatches to the methods, so at import time it is not
        # ready yet.
        from client.site_config import simulated_site

        with tempfile.TemporaryDirectory() as scratch:
            site = simulated_site(config, 0, Path(scratch))
            trainer = DPGANTrainer(
                site.data,
                site.unit_keys(),
                config.model,
                config.training,
                DPSettings(1.0, config.privacy.max_grad_norm, min(1.0, 64 / len(site.data))),
                resolve_device(config.runtime.device),
            )
            trainer.train(2)  # warm-up
            started = time.perf_counter()
            trainer.train(probe_steps)
            per_step = (time.perf_counter() - started) / probe_steps
        federation = config.federation
        steps = self.schedule(config).planned_steps * federation.num_sites / parallel_sites(config)
        return SIMULATION_START_S + federation.rounds * ROUND_OVERHEAD_S + steps * per_step


def plan_sgd_noise(
    config: Config, *, units: int, budget: SiteBudget, steps: int, history: tuple = ()
) -> NoisePlan:
    """The sample rate and noise a site with `units` units would calibrate its DP-SGD steps
    to, after `history` and its size estimate; the exact count stands in for its noisy
    estimate here."""
    rate = min(1.0, config.training.batch_size / units)
    sigma = config.privacy.noise_multiplier or calibrate_noise_multiplier(
        target_epsilon=budget.target_epsilon,
        delta=budget.delta,
        sample_rate=rate,
        steps=steps,
        accountant=config.privacy.accountant,
        history=[*history, SIZE_ESTIMATE],
    )
    return NoisePlan(rate, sigma)


def estimate_size(site, ledger: PrivacyLedger, round_number: int) -> None:
    """Once per ledger, committed on its own: the DP estimate of the unit count that the
    sample rate divides by. A refusal later in the round must not let the next request draw
    a fresh estimate."""
    if ledger.unit_count_estimate is not None or ledger.calibrated:
        return
    budget = site.policy.budget
    cost = epsilon_spent(
        [*ledger.history(), SIZE_ESTIMATE], delta=budget.delta, accountant=ledger.accountant
    )
    if site.policy.private and cost > site.policy.max_epsilon + EPSILON_SLACK:
        raise site.refuse(
            SiteError.REFUSED_BUDGET,
            round_number,
            f"even its size estimate would raise its epsilon to {cost:.3f}, above its maximum "
            f"{site.policy.max_epsilon:g}",
        )
    units = len(np.unique(site.unit_keys()))
    ledger.record_size_estimate(
        round_number=round_number, estimate=units + SIZE_NOISE_MULTIPLIER * os_normal()
    )


def calibrate(site, ledger: PrivacyLedger, config: Config, request: RoundRequest) -> None:
    """On first use, fix the ledger's sample rate (from the DP size estimate) and noise.

    The noise multiplier is the server's fixed one if the config sets it, else calibrated from
    the site's budget; below the site's minimum it is refused, and once the ledger is
    calibrated, a request for a different one is refused.
    """
    requested = config.privacy.noise_multiplier
    if ledger.calibrated:
        if requested is not None and not math.isclose(requested, ledger.noise_multiplier):
            raise site.refuse(
                SiteError.REFUSED_POLICY,
                request.round,
                f"it asks noise multiplier {requested:g} but this site's ledger for its data "
                f"trains with {ledger.noise_multiplier:.4f}",
            )
        return
    budget = site.policy.budget
    sample_rate = min(1.0, config.training.batch_size / max(ledger.unit_count_estimate, 1.0))
    sigma = requested
    if sigma is None:
        sigma = calibrate_noise_multiplier(
            target_epsilon=budget.target_epsilon,
            delta=budget.delta,
            sample_rate=sample_rate,
            steps=request.planned_steps,
            accountant=ledger.accountant,
            history=ledger.history(),
        )
    if math.isinf(sigma):
        raise site.refuse(
            SiteError.REFUSED_BUDGET,
            request.round,
            f"its ledger already holds epsilon {ledger.epsilon():.3f} of its target "
            f"{budget.target_epsilon:g}",
        )
    if sigma < site.policy.min_noise_multiplier:
        raise site.refuse(
            SiteError.REFUSED_POLICY,
            request.round,
            f"noise multiplier {sigma:.4f} is below the site's minimum "
            f"{site.policy.min_noise_multiplier:g} (privacy.min_noise_multiplier)",
        )
    ledger.calibrate(noise_multiplier=sigma, sample_rate=sample_rate)


def train(site, ledger, config, request, generator, discriminator, device, show_progress):
    """The recorded steps; the site keeps its discriminator and optimizers between rounds."""
    trainer = DPGANTrainer(
        site.data,
        site.unit_keys(),
        config.model,
        config.training,
        DPSettings(ledger.noise_multiplier, config.privacy.max_grad_norm, ledger.sample_rate),
        device,
    )
    local = torch.load(site.state_path, weights_only=True) if site.state_path.exists() else {}
    if site.prior is not None and not local:
        # A discriminator the server does not send starts from the public prior's.
        start_from(
            site.prior,
            trainer.generator,
            trainer.discriminator,
            class_names=site.data.class_names,
            multi_label=site.data.multi_label,
        )
    # A site that keeps its discriminator trains its own, not the federation's average.
    shares = request.share_discriminator and site.policy.share_discriminator
    trainer.load(
        generator=generator,
        discriminator=discriminator
        if discriminator is not None and shares
        else local.get("discriminator"),
        optimizers=local.get("optimizers"),
    )
    with tqdm(
        total=request.local_steps,
        desc=f"{site.policy.name} round {request.round}",
        unit="step",
        disable=not show_progress,
    ) as bar:
        losses = trainer.train(request.local_steps, on_step=lambda: bar.update(1))
    discriminator_state = _cpu(trainer.discriminator.state_dict())
    atomic.torch_save(
        {"discriminator": discriminator_state, "optimizers": trainer.optimizer_state()},
        site.state_path,
    )
    metrics = {
        **site.privacy_metrics(
            ledger,
            noise_multiplier=ledger.noise_multiplier,
            sample_rate=ledger.sample_rate,
            exhausted=ledger.epsilon_after(request.local_steps)
            > site.policy.max_epsilon + EPSILON_SLACK,
        ),
        "unit_count_estimate": ledger.unit_count_estimate,
        **losses,
    }
    return RoundResult(
        generator=_cpu(trainer.generator.state_dict()),
        discriminator=discriminator_state if shares else None,
        metrics=metrics,
    )


def _cpu(state: StateDict) -> StateDict:
    """On the CPU, with any non-finite value as zero: weights a hostile request drove to
    overflow leave the site finite (post-processing of the DP steps)."""
    return {
        key: torch.nan_to_num(value.detach().cpu(), nan=0.0, posinf=0.0, neginf=0.0)
        for key, value in state.items()
    }


METHODS.register(DPGAN.name)(DPGAN())
