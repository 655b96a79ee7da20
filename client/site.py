"""One site's round: policy checks, ledger entry, local DP-GAN training. No Flower here."""

import hashlib
import math
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from client.mean_embedding import noisy_class_sums
from client.training import DPGANTrainer, DPSettings
from common import atomic
from common.config import Config, SiteBudget
from common.data import ImageSet
from common.mean_embedding import features_for
from common.models import build_models
from common.privacy.accounting import (
    SIZE_ESTIMATE,
    SIZE_NOISE_MULTIPLIER,
    calibrate_noise_multiplier,
    calibrate_release_noise,
    epsilon_spent,
)
from common.privacy.ledger import PrivacyLedger
from common.protocol import RoundRequest, RoundResult, SiteError

# Slack for the accountant's floating point when comparing against the maximum.
EPSILON_SLACK = 1e-9


class RoundRefused(Exception):
    """The site will not run this round. `code` is all the server learns; the message, for
    the site's own log, says why."""

    def __init__(self, code: SiteError, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SitePolicy:
    """What the site itself allows, whatever the server asks.

    max_grad_norm: the only clip the site accepts; None = the federation's.
    share_discriminator: whether discriminator weights may leave the site; if not, the site
        replies with the generator only and keeps training its own discriminator.
    min_noise_multiplier: the least noise the site trains with.
    """

    name: str
    budget: SiteBudget
    unit: str
    accountant: str
    share_discriminator: bool
    max_grad_norm: float | None = None
    min_noise_multiplier: float = 0.0

    @property
    def max_epsilon(self) -> float:
        return self.budget.max_epsilon or self.budget.target_epsilon

    @property
    def private(self) -> bool:
        return math.isfinite(self.budget.target_epsilon)


@dataclass
class Site:
    """ledger_path: the privacy ledger of this site's dataset (outlives runs).
    run_state_dir: this run's private state (discriminator, optimizers, last reply)."""

    policy: SitePolicy
    data: ImageSet
    ledger_path: Path
    run_state_dir: Path

    @property
    def state_path(self) -> Path:
        return self.run_state_dir / "training-state.pt"

    @property
    def reply_path(self) -> Path:
        return self.run_state_dir / "last-reply.pt"

    def unit_keys(self) -> np.ndarray:
        if self.policy.unit == "patient":
            return self.data.patient_keys()
        return np.arange(len(self.data)).astype(str)

    def open_ledger(self) -> PrivacyLedger:
        """This site's ledger as it stands; change it only inside its transaction."""
        return PrivacyLedger.open(
            self.ledger_path,
            unit=self.policy.unit,
            delta=self.policy.budget.delta,
            accountant=self.policy.accountant,
        )

    def refuse(self, code: SiteError, round_number: int, reason: str) -> RoundRefused:
        return RoundRefused(code, f"site {self.policy.name} refuses round {round_number}: {reason}")

    def estimate_size(self, ledger: PrivacyLedger, round_number: int) -> None:
        """Once per ledger, committed on its own: the DP estimate of the unit count that
        the sample rate divides by. A refusal later in the round must not let the next
        request draw a fresh estimate."""
        if ledger.unit_count_estimate is not None or ledger.calibrated:
            return
        budget = self.policy.budget
        cost = epsilon_spent([*ledger.history(), SIZE_ESTIMATE], budget.delta, ledger.accountant)
        if self.policy.private and cost > self.policy.max_epsilon + EPSILON_SLACK:
            raise self.refuse(
                SiteError.REFUSED_BUDGET,
                round_number,
                f"even its size estimate would raise its epsilon to {cost:.3f}, above its "
                f"maximum {self.policy.max_epsilon:g}",
            )
        units = len(np.unique(self.unit_keys()))
        ledger.record_size_estimate(round_number, units + SIZE_NOISE_MULTIPLIER * os_normal())

    def calibrate(self, ledger: PrivacyLedger, config: Config, request: RoundRequest) -> None:
        """On first use, fix the ledger's sample rate (from the DP size estimate) and noise.

        The noise multiplier is the server's fixed one if the config sets it, else calibrated
        from the site's budget; below the site's minimum it is refused, and once the ledger
        is calibrated, a request for a different one is refused.
        """
        requested = config.privacy.noise_multiplier
        if ledger.calibrated:
            if requested is not None and not math.isclose(requested, ledger.noise_multiplier):
                raise self.refuse(
                    SiteError.REFUSED_POLICY,
                    request.round,
                    f"it asks noise multiplier {requested:g} but this site's ledger for its "
                    f"data trains with {ledger.noise_multiplier:.4f}",
                )
            return
        budget = self.policy.budget
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
            raise self.refuse(
                SiteError.REFUSED_BUDGET,
                request.round,
                f"its ledger already holds epsilon {ledger.epsilon():.3f} of its target "
                f"{budget.target_epsilon:g}",
            )
        if sigma < self.policy.min_noise_multiplier:
            raise self.refuse(
                SiteError.REFUSED_POLICY,
                request.round,
                f"noise multiplier {sigma:.4f} is below the site's minimum "
                f"{self.policy.min_noise_multiplier:g} (privacy.min_noise_multiplier)",
            )
        ledger.calibrate(noise_multiplier=sigma, sample_rate=sample_rate)

    def check_policy(self, config: Config, request: RoundRequest) -> None:
        """Refuse what the site's own policy does not allow, before anything is trained."""
        own = self.policy.max_grad_norm
        if own is not None and not math.isclose(config.privacy.max_grad_norm, own):
            raise self.refuse(
                SiteError.REFUSED_POLICY,
                request.round,
                f"it asks clip (max_grad_norm) {config.privacy.max_grad_norm:g}, but this "
                f"site's policy clips at {own:g}",
            )

    def check_request(
        self,
        config: Config,
        request: RoundRequest,
        generator: dict[str, torch.Tensor],
        discriminator: dict[str, torch.Tensor] | None,
    ) -> None:
        """Refuse a malformed request before it can touch the ledger or the data."""
        if request.local_steps < 1 or request.planned_steps < request.local_steps:
            raise self.refuse(
                SiteError.MALFORMED_REQUEST,
                request.round,
                f"local_steps={request.local_steps}, planned_steps={request.planned_steps}",
            )
        expected_g, expected_d = build_models(
            self.data.num_classes, self.data.resolution, config.model
        )
        received = [("generator", generator, expected_g)]
        if discriminator is not None:
            received.append(("discriminator", discriminator, expected_d))
        for label, state, model in received:
            expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
            shapes = {key: tuple(value.shape) for key, value in state.items()}
            if shapes != expected:
                raise self.refuse(
                    SiteError.MALFORMED_REQUEST,
                    request.round,
                    f"the {label} weights do not match the model for its data "
                    f"({self.data.num_classes} classes, {self.data.resolution} px); check the "
                    "server's config",
                )
            if not all(torch.isfinite(value).all() for value in state.values()):
                raise self.refuse(
                    SiteError.MALFORMED_REQUEST, request.round, f"non-finite {label} weights"
                )

    def run_round(
        self,
        config: Config,
        request: RoundRequest,
        generator: dict[str, torch.Tensor],
        discriminator: dict[str, torch.Tensor] | None,
        device: torch.device,
        show_progress: bool = False,
    ) -> RoundResult:
        """One round of local DP training, or for the mean_embedding method the site's one
        release; refuses (RoundRefused) if over the site's budget.

        show_progress: a bar over the local steps on the site's console (a SuperNode's log).
        """
        self.check_request(config, request, generator, discriminator)
        self.check_policy(config, request)
        request_key = _request_key(request, generator, discriminator)
        cached = self.cached_reply(request_key)
        if cached is not None:
            return cached
        if config.training.method == "mean_embedding":
            return self.release_mean_embedding(config, request, request_key)
        ledger = self.open_ledger()
        with ledger.transaction():
            self.estimate_size(ledger, request.round)
        # Calibration, the budget check and the entry in one transaction: another process on
        # this ledger cannot spend in between.
        with ledger.transaction():
            self.calibrate(ledger, config, request)
            spent = ledger.epsilon()
            after = ledger.epsilon_after(request.local_steps)
            if after > self.policy.max_epsilon + EPSILON_SLACK:
                raise self.refuse(
                    SiteError.REFUSED_BUDGET,
                    request.round,
                    f"{request.local_steps} more steps would raise its epsilon from {spent:.3f} "
                    f"to {after:.3f}, above its maximum {self.policy.max_epsilon:g} "
                    f"(delta={ledger.delta:g})",
                )
            # Recorded before training: a crash mid-round can only over-count.
            ledger.record(request.round, request.local_steps)

        trainer = DPGANTrainer(
            self.data,
            self.unit_keys(),
            config.model,
            config.training,
            DPSettings(ledger.noise_multiplier, config.privacy.max_grad_norm, ledger.sample_rate),
            device,
        )
        local = torch.load(self.state_path, weights_only=True) if self.state_path.exists() else {}
        # A site that keeps its discriminator trains its own, not the federation's average.
        shares = request.share_discriminator and self.policy.share_discriminator
        trainer.load(
            generator=generator,
            discriminator=discriminator
            if discriminator is not None and shares
            else local.get("discriminator"),
            optimizers=local.get("optimizers"),
        )
        with tqdm(
            total=request.local_steps,
            desc=f"{self.policy.name} round {request.round}",
            unit="step",
            disable=not show_progress,
        ) as bar:
            losses = trainer.train(request.local_steps, on_step=lambda: bar.update(1))
        discriminator_state = _cpu(trainer.discriminator.state_dict())
        atomic.torch_save(
            {"discriminator": discriminator_state, "optimizers": trainer.optimizer_state()},
            self.state_path,
        )
        metrics = {
            **self.privacy_metrics(
                ledger,
                noise_multiplier=ledger.noise_multiplier,
                sample_rate=ledger.sample_rate,
                exhausted=ledger.epsilon_after(request.local_steps)
                > self.policy.max_epsilon + EPSILON_SLACK,
            ),
            "unit_count_estimate": ledger.unit_count_estimate,
            **losses,
        }
        result = RoundResult(
            generator=_cpu(trainer.generator.state_dict()),
            discriminator=discriminator_state if shares else None,
            metrics=metrics,
        )
        atomic.torch_save({"request": request_key, "result": asdict(result)}, self.reply_path)
        return result

    def release_mean_embedding(
        self, config: Config, request: RoundRequest, request_key: str
    ) -> RoundResult:
        """The site's noised per-class embedding sums, with noise the site calibrates itself
        so that everything its ledger holds plus this release stays within its budget."""
        budget = self.policy.budget
        ledger = self.open_ledger()
        with ledger.transaction():
            spent = ledger.epsilon()
            sigma = calibrate_release_noise(
                history=ledger.history(),
                target_epsilon=budget.target_epsilon,
                delta=budget.delta,
                accountant=ledger.accountant,
            )
            sigma = max(sigma, self.policy.min_noise_multiplier)
            after = epsilon_spent(
                [*ledger.history(), (sigma, 1.0, 1)], budget.delta, ledger.accountant
            )
            if math.isinf(sigma) or (
                self.policy.private and after > self.policy.max_epsilon + EPSILON_SLACK
            ):
                raise self.refuse(
                    SiteError.REFUSED_BUDGET,
                    request.round,
                    f"its ledger already holds epsilon {spent:.3f} of its target "
                    f"{budget.target_epsilon:g}, so no release fits its budget",
                )
            # Recorded before the release is computed: a crash can only over-count.
            ledger.record_release(request.round, sigma)
        release = noisy_class_sums(
            self.data,
            self.unit_keys(),
            features_for(config),
            sigma,
            config.mean_embedding.count_share,
        )
        metrics = self.privacy_metrics(
            ledger,
            noise_multiplier=sigma,
            sample_rate=1.0,
            exhausted=True,  # the release is the site's whole contribution
        )
        result = RoundResult(generator={}, discriminator=None, metrics=metrics, release=release)
        atomic.torch_save({"request": request_key, "result": asdict(result)}, self.reply_path)
        return result

    def privacy_metrics(
        self, ledger: PrivacyLedger, *, noise_multiplier: float, sample_rate: float, exhausted: bool
    ) -> dict[str, float]:
        """What every reply says about the site's privacy: functions of its settings and its
        ledger, never of the exact data."""
        return {
            "epsilon": ledger.epsilon(),
            "delta": ledger.delta,
            "max_epsilon": self.policy.max_epsilon,
            "noise_multiplier": noise_multiplier,
            "sample_rate": sample_rate,
            "steps": float(ledger.steps),
            "budget_exhausted": float(exhausted),
        }

    def cached_reply(self, request_key: str) -> RoundResult | None:
        """The reply to this exact request if the site already trained it.

        A server that restarts mid-round sends the same round with the same weights again;
        sending the same DP output twice costs no privacy, training again would. A request
        that differs in anything (round, steps, weights) is trained and recorded anew.
        """
        if not self.reply_path.exists():
            return None
        saved = torch.load(self.reply_path, weights_only=True)
        if saved["request"] != request_key:
            return None
        return RoundResult(**saved["result"])


def _request_key(
    request: RoundRequest,
    generator: dict[str, torch.Tensor],
    discriminator: dict[str, torch.Tensor] | None,
) -> str:
    digest = hashlib.sha256(repr(asdict(request)).encode())
    for state in (generator, discriminator or {}):
        for key in sorted(state):
            digest.update(key.encode())
            digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def os_normal() -> float:
    """A standard normal draw seeded from the OS: noise the server could regenerate from a
    config seed would be none."""
    return float(np.random.default_rng(secrets.randbits(128)).standard_normal())


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu() for key, value in state.items()}
