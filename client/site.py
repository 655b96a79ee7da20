"""One site: its policy, data, ledger and state, and the checks every round passes before
the training method runs. No Flower here."""

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from client.server_settings import check_request_fields
from common import atomic
from common.config import Config, SiteBudget
from common.data import ImageSet
from common.models import build_models
from common.prior.file import Prior
from common.privacy.ledger import PrivacyLedger
from common.protocol import RoundRequest, RoundResult, SiteError
from common.run_folder import SiteFolder
from methods import method_for


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
    run_state_dir: this run's private state (discriminator, optimizers, last reply).
    prior: the public prior its discriminator starts from (none at a deployed site)."""

    policy: SitePolicy
    data: ImageSet
    ledger_path: Path
    run_state_dir: Path
    # The public prior the site's models start from, if any; its hash goes into the ledger.
    prior: Prior | None = None

    @property
    def state_path(self) -> Path:
        return SiteFolder(self.run_state_dir).training_state

    @property
    def reply_path(self) -> Path:
        return SiteFolder(self.run_state_dir).last_reply

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

    def check_steps(self, request: RoundRequest) -> None:
        """Refuse round and step counts outside the site's ranges before anything is touched."""
        problem = check_request_fields(asdict(request))
        if problem:
            raise self.refuse(SiteError.MALFORMED_REQUEST, request.round, problem)

    def check_weights(
        self,
        config: Config,
        request: RoundRequest,
        generator: dict[str, torch.Tensor],
        discriminator: dict[str, torch.Tensor] | None,
    ) -> None:
        """Refuse weights that are not the federation's model for this site's data."""
        problem = weights_problem(
            config,
            generator,
            discriminator,
            num_classes=self.data.num_classes,
            resolution=self.data.resolution,
        )
        if problem:
            raise self.refuse(SiteError.MALFORMED_REQUEST, request.round, problem)

    def run_round(
        self,
        config: Config,
        request: RoundRequest,
        generator: dict[str, torch.Tensor],
        discriminator: dict[str, torch.Tensor] | None,
        device: torch.device,
        show_progress: bool = False,
    ) -> RoundResult:
        """The training method's work for one request (methods/), after the checks every
        method shares; refuses (RoundRefused) what the site's policy or budget does not allow.

        show_progress: a bar over the local steps on the site's console (a SuperNode's log).
        """
        self.check_steps(request)
        self.check_policy(config, request)
        request_key = _request_key(request, generator, discriminator)
        cached = self.cached_reply(request_key)
        if cached is not None:
            return cached
        result = method_for(config).site_round(
            self,
            config,
            request,
            generator,
            discriminator,
            device=device,
            show_progress=show_progress,
        )
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


def weights_problem(
    config: Config,
    generator: dict[str, torch.Tensor],
    discriminator: dict[str, torch.Tensor] | None,
    *,
    num_classes: int,
    resolution: int,
) -> str:
    """Why the weights are not the federation's model for `num_classes` classes at
    `resolution` px, or not finite; '' if they are. An empty generator (a release request)
    carries no weights."""
    expected_g, expected_d = build_models(num_classes, resolution, config.model)
    received = [("generator", generator, expected_g)] if generator else []
    if discriminator is not None:
        received.append(("discriminator", discriminator, expected_d))
    for label, state, model in received:
        expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        shapes = {key: tuple(value.shape) for key, value in state.items()}
        if shapes != expected:
            return (
                f"the {label} weights do not match the model for its data ({num_classes} "
                f"classes, {resolution} px); check the server's config"
            )
        if not all(torch.isfinite(value).all() for value in state.values()):
            return f"non-finite {label} weights"
    return ""


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
