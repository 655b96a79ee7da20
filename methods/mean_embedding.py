"""Method `mean_embedding` (DP-MERF): each site releases its per-class sums of random-feature
embeddings once, through the Gaussian mechanism; the server fits the generator to the pooled
releases. Requests carry no weights: the site trains nothing.
"""

import math
import tempfile
import time
from pathlib import Path

import torch

from client.mean_embedding import noisy_class_sums
from common.config import Config, SiteBudget
from common.device import resolve_device
from common.mean_embedding import features_for
from common.privacy.accounting import EPSILON_SLACK, calibrate_release_noise, epsilon_spent
from common.protocol import RoundResult, SiteError, SiteReply
from methods.base import (
    METHODS,
    ROUND_OVERHEAD_S,
    SIMULATION_START_S,
    NoisePlan,
    Schedule,
    StateDict,
    parallel_sites,
)
from server.mean_embedding import fit_generator, fit_seconds_per_step


class MeanEmbedding:
    name = "mean_embedding"
    ledger_mechanisms = ("release",)
    loss_curves = ()  # the site trains nothing

    def schedule(self, config: Config) -> Schedule:
        return Schedule(rounds=1, local_steps=1)

    def describe(self, schedule: Schedule) -> str:
        return "one mean-embedding release (Gaussian mechanism)"

    def plan_noise(self, config: Config, *, units: int, budget: SiteBudget) -> NoisePlan:
        sigma = calibrate_release_noise(
            history=[],
            target_epsilon=budget.target_epsilon,
            delta=budget.delta,
            accountant=config.privacy.accountant,
        )
        return NoisePlan(1.0, sigma)

    def request_models(self, server) -> tuple[StateDict, StateDict | None]:
        return {}, None

    def site_round(
        self, site, config, request, generator, discriminator, *, device, show_progress
    ) -> RoundResult:
        return release_round(
            site,
            config,
            request,
            target_epsilon=site.policy.budget.target_epsilon,
            last=True,  # the release is the site's whole contribution
            device=device,
        )

    def aggregate(self, server, replies: list[SiteReply]) -> dict:
        state = server.state
        started = time.perf_counter()
        state.generator, fit_loss = fit_generator(
            server.config,
            len(server.class_names),
            server.multi_label,
            state.generator,
            [reply.result.release for reply in replies],
            device=server.device,
        )
        state.generator_ema = state.generator
        seconds = time.perf_counter() - started
        state.elapsed_s += seconds
        return {"fit_loss": fit_loss, "fit_seconds": seconds}

    def finished(self, server, replies: list[SiteReply]) -> str:
        # A release round nobody answered is not a completed run: the server says why.
        if not replies:
            return ""
        return f"fitted the generator to {len(replies)} site(s)' mean embeddings"

    def progress_text(self, stats: dict, schedule: Schedule) -> str:
        eps = ",".join(f"{float(s['epsilon']):.2f}" for s in stats["sites"].values())
        return f"released eps [{eps}] fit loss {stats['server']['fit_loss']:.4f}"

    def estimate_seconds(self, config: Config) -> float:
        """One site's release timed on its data, then a few fit steps timed on this machine,
        both on runtime.device."""
        # Imported here: client.site dispatches to the methods, so at import time it is not
        # ready yet.
        from client.site_config import simulated_site

        device = resolve_device(config.runtime.device)
        with tempfile.TemporaryDirectory() as scratch:
            site = simulated_site(config, 0, Path(scratch))
            started = time.perf_counter()
            noisy_class_sums(
                site.data,
                site.unit_keys(),
                features_for(config),
                noise_multiplier=1.0,
                count_share=config.mean_embedding.count_share,
                device=device,
            )
            release_s = time.perf_counter() - started
            class_names, multi_label = site.data.class_names, site.data.multi_label
        per_step = fit_seconds_per_step(config, len(class_names), multi_label, device=device)
        fit_steps = config.mean_embedding.generator_steps * config.model.generator_components
        sites = config.federation.num_sites
        return (
            SIMULATION_START_S
            + ROUND_OVERHEAD_S
            + release_s * sites / parallel_sites(config)
            + fit_steps * per_step
        )


def release_round(
    site, config, request, *, target_epsilon: float, last: bool, device: torch.device
) -> RoundResult:
    """The site's noised per-class embedding sums, computed on `device`, with noise the site
    calibrates itself so that everything its ledger holds plus this release reaches
    `target_epsilon` (at most its budget); `last`: the site reports its budget spent."""
    budget = site.policy.budget
    ledger = site.open_ledger()
    with ledger.transaction():
        spent = ledger.epsilon()
        sigma = calibrate_release_noise(
            history=ledger.history(),
            target_epsilon=min(target_epsilon, budget.target_epsilon),
            delta=budget.delta,
            accountant=ledger.accountant,
        )
        sigma = max(sigma, site.policy.min_noise_multiplier)
        after = epsilon_spent(
            [*ledger.history(), (sigma, 1.0, 1)],
            delta=budget.delta,
            accountant=ledger.accountant,
        )
        if math.isinf(sigma) or (
            site.policy.private and after > site.policy.max_epsilon + EPSILON_SLACK
        ):
            raise site.refuse(
                SiteError.REFUSED_BUDGET,
                request.round,
                f"its ledger already holds epsilon {spent:.3f} of its target "
                f"{budget.target_epsilon:g}, so no release fits its budget",
            )
        # Recorded before the release is computed: a crash can only over-count.
        embeds_prior = site.prior is not None and config.mean_embedding.prior_features > 0
        ledger.record_release(
            round_number=request.round,
            noise_multiplier=sigma,
            prior=site.prior.sha256 if embeds_prior else "",
        )
    release = noisy_class_sums(
        site.data,
        site.unit_keys(),
        # The site's own prior, the one its ledger entry names.
        features_for(config, prior=site.prior),
        noise_multiplier=sigma,
        count_share=config.mean_embedding.count_share,
        device=device,
    )
    metrics = site.privacy_metrics(ledger, noise_multiplier=sigma, sample_rate=1.0, exhausted=last)
    return RoundResult(generator={}, discriminator=None, metrics=metrics, release=release)


METHODS.register(MeanEmbedding.name)(MeanEmbedding())
