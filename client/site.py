"""One site's round: policy checks, ledger entry, local DP-GAN training. No Flower here."""

import hashlib
import math
import time
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
    calibrate_noise_multiplier,
    calibrate_release_noise,
    epsilon_spent,
)
from common.privacy.ledger import PrivacyLedger
from common.protocol import RoundRequest, RoundResult

# Slack for the accountant's floating point when comparing against the maximum.
EPSILON_SLACK = 1e-9


class RoundRefused(Exception):
    """The site will not run this round; the message says why. Nothing private is sent."""


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

    def open_ledger(self, config: Config, planned_steps: int, round_number: int = 0):
        """The site's ledger, calibrated on first use for the planned number of steps.

        The noise multiplier is the server's fixed one if the config sets it, else calibrated
        from the site's budget; below the site's minimum it is refused, and once the ledger
        exists, a request for a different one is refused.
        """
        budget = self.policy.budget
        ledger = PrivacyLedger.open(self.ledger_path, budget.delta, self.policy.accountant)
        requested = config.privacy.noise_multiplier
        refuse = f"site {self.policy.name} refuses round {round_number}"
        if ledger.calibrated:
            if requested is not None and not math.isclose(requested, ledger.noise_multiplier):
                raise RoundRefused(
                    f"{refuse}: it asks noise multiplier {requested:g} but this site's ledger "
                    f"for its data trains with {ledger.noise_multiplier:.4f}"
                )
            return ledger
        units = len(np.unique(self.unit_keys()))
        sample_rate = min(1.0, config.training.batch_size / units)
        sigma = requested
        if sigma is None:
            sigma = calibrate_noise_multiplier(
                budget.target_epsilon, budget.delta, sample_rate, planned_steps, ledger.accountant
            )
        if sigma < self.policy.min_noise_multiplier:
            raise RoundRefused(
                f"{refuse}: noise multiplier {sigma:.4f} is below the site's minimum "
                f"{self.policy.min_noise_multiplier:g} (privacy.min_noise_multiplier)"
            )
        ledger.calibrate(sigma, sample_rate)
        return ledger

    def check_policy(self, config: Config, request: RoundRequest) -> None:
        """Refuse what the site's own policy does not allow, before anything is trained."""
        refuse = f"site {self.policy.name} refuses round {request.round}"
        own = self.policy.max_grad_norm
        if own is not None and not math.isclose(config.privacy.max_grad_norm, own):
            raise RoundRefused(
                f"{refuse}: it asks clip (max_grad_norm) {config.privacy.max_grad_norm:g}, but "
                f"this site's policy clips at {own:g}"
            )

    def check_request(
        self,
        config: Config,
        request: RoundRequest,
        generator: dict[str, torch.Tensor],
        discriminator: dict[str, torch.Tensor] | None,
    ) -> None:
        """Refuse a malformed request before it can touch the ledger or the data."""
        name = self.policy.name
        if request.local_steps < 1 or request.planned_steps < request.local_steps:
            raise RoundRefused(
                f"site {name} refuses round {request.round}: malformed request "
                f"(local_steps={request.local_steps}, planned_steps={request.planned_steps})"
            )
        expected_g, expected_d = build_models(
            self.data.num_classes, self.data.resolution, config.model
        )
        received = [("generator", generator, expected_g)]
        if discriminator is not None:
            received.append(("discriminator", discriminator, expected_d))
        for label, state, model in received:
            expected = {key: value.shape for key, value in model.state_dict().items()}
            shapes = {key: tuple(value.shape) for key, value in state.items()}
            if shapes != {key: tuple(shape) for key, shape in expected.items()}:
                raise RoundRefused(
                    f"site {name} refuses round {request.round}: the {label} weights do not "
                    f"match the model for its data ({self.data.num_classes} classes, "
                    f"{self.data.resolution} px); check the server's config"
                )
            if not all(torch.isfinite(value).all() for value in state.values()):
                raise RoundRefused(
                    f"site {name} refuses round {request.round}: non-finite {label} weights"
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
        started = time.perf_counter()
        self.check_request(config, request, generator, discriminator)
        self.check_policy(config, request)
        request_key = _request_key(request, generator, discriminator)
        cached = self.cached_reply(request_key)
        if cached is not None:
            return cached
        if config.training.method == "mean_embedding":
            return self.release_mean_embedding(config, request, request_key, started)
        ledger = self.open_ledger(config, request.planned_steps, request.round)
        spent = ledger.epsilon()
        after = ledger.epsilon_after(request.local_steps)
        if after > self.policy.max_epsilon + EPSILON_SLACK:
            raise RoundRefused(
                f"site {self.policy.name} refuses round {request.round}: "
                f"{request.local_steps} more steps would raise its epsilon from {spent:.3f} to "
                f"{after:.3f}, above its maximum {self.policy.max_epsilon:g} "
                f"(delta={ledger.delta:g})"
            )
        # Recorded before training: a crash mid-round can only over-count, never under-count.
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
        epsilon = ledger.epsilon()
        metrics = {
            "num_examples": float(len(self.data)),
            "epsilon": epsilon,
            "delta": ledger.delta,
            "max_epsilon": self.policy.max_epsilon,
            "noise_multiplier": ledger.noise_multiplier,
            "sample_rate": ledger.sample_rate,
            "steps": float(ledger.steps),
            "budget_exhausted": float(
                ledger.epsilon_after(request.local_steps) > self.policy.max_epsilon + EPSILON_SLACK
            ),
            "seconds": time.perf_counter() - started,
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
        self, config: Config, request: RoundRequest, request_key: str, started: float
    ) -> RoundResult:
        """The site's noised per-class embedding sums, with noise the site calibrates itself
        so that everything its ledger holds plus this release stays within its budget."""
        budget = self.policy.budget
        ledger = PrivacyLedger.open(self.ledger_path, budget.delta, self.policy.accountant)
        spent = ledger.epsilon()
        sigma = calibrate_release_noise(
            ledger.history(), budget.target_epsilon, budget.delta, ledger.accountant
        )
        sigma = max(sigma, self.policy.min_noise_multiplier)
        after = epsilon_spent([*ledger.history(), (sigma, 1.0, 1)], budget.delta, ledger.accountant)
        if math.isinf(sigma) or (
            self.policy.private and after > self.policy.max_epsilon + EPSILON_SLACK
        ):
            raise RoundRefused(
                f"site {self.policy.name} refuses round {request.round}: its ledger already "
                f"holds epsilon {spent:.3f} of its target {budget.target_epsilon:g}, so no "
                "release fits its budget"
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
        metrics = {
            "num_examples": float(len(self.data)),
            "epsilon": ledger.epsilon(),
            "delta": ledger.delta,
            "max_epsilon": self.policy.max_epsilon,
            "noise_multiplier": sigma,
            "sample_rate": 1.0,
            "steps": float(ledger.steps),
            "budget_exhausted": 1.0,  # the release is the site's whole contribution
            "seconds": time.perf_counter() - started,
        }
        result = RoundResult(generator={}, discriminator=None, metrics=metrics, release=release)
        atomic.torch_save({"request": request_key, "result": asdict(result)}, self.reply_path)
        return result

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


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu() for key, value in state.items()}
