"""DP audit: an empirical epsilon lower bound for one site's DP-SGD, next to the accountant's.

Threat model: the strongest one DP promises to hold against, and the one DP-SGD's accountant
covers: the attacker knows everything but whether each canary was in the training set, and
sees every step's noised gradient of the discriminator (white-box, all iterates).
The audit re-runs one site's training (same data, model, DP-SGD code `DPGANTrainer`, noise
multiplier, sample rate and clipping norm as the run's ledger and config) with m canaries,
each included independently with probability 1/2. Canaries are uniform-noise images with
random labels, far from the data.
Score: at the weights a step started from, the attacker computes what each canary would add to
the gradient sum (its clipped gradient as a real row) and fits the released sum by all the
canaries' contributions at once (least squares): a weight near 1 means included. Fitting all
of them together keeps what the other canaries add off each one's weight, which otherwise
swamps it. Each canary's weights are summed over steps in units of their noise (higher =
included). To keep the cost at about REFRESHES fits whatever the step count, the
contributions are recomputed every steps // REFRESHES steps and fit the steps' summed
gradients in between (the weights drift within such a block, which costs power, not validity).
What the site's own records add on average (the sample rate times their clipped gradients,
known to the attacker) is removed first; the variation of their sampling and the generated
rows are not, so on real data the bound is looser than on canaries alone.
The bounds (`attacks.audit_bounds`) are compared with the accountant's epsilon for exactly
the audited steps; a lower bound above it means the DP implementation does not deliver what
the accountant claims. Their ceiling, what a perfect attacker would certify with these
canaries, is reported with them: a claim above it cannot be refuted by this audit.
The audit trains `audit_steps` steps (default 500, fewer than the run's thousands, to keep it
within minutes); the accountant's epsilon is computed for those steps.
"""

import math

import numpy as np
import torch
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F
from tqdm import tqdm

from attacks.audit_bounds import (
    clopper_pearson_ceiling,
    clopper_pearson_epsilon,
    one_run_ceiling,
    one_run_epsilon,
    untestable_note,
)
from attacks.context import AttackContext, member_sites
from attacks.registry import MECHANISM_AUDIT, AttackResult, register
from client.training import DPGANTrainer, DPSettings, to_tensors
from common.data import ImageSet
from common.device import CPU
from common.models import build_models
from common.privacy.accounting import epsilon_spent
from common.privacy.ledger import PrivacyLedger
from common.run_data import RunData
from common.run_folder import RunFolder, site_name
from methods import METHODS, method_for

# Contribution fits per audit: the per-canary gradients they need cost most of its time.
REFRESHES = 40
SITE_CHUNK = 256


def make_canaries(count: int, like: ImageSet, rng: np.random.Generator) -> ImageSet:
    """Uniform-noise images at the data's resolution with random labels.

    Independent noise images are nearly orthogonal, so the discriminator can only single out
    an included one by having fitted that very image.
    """
    size = like.resolution
    images = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    if like.multi_label:
        labels = (rng.random((count, like.num_classes)) < 0.3).astype(np.float32)
    else:
        classes = rng.integers(0, like.num_classes, count)
        labels = np.eye(like.num_classes, dtype=np.float32)[classes]
    return ImageSet(images, labels, like.class_names, like.multi_label)


def site_unit_keys(data: ImageSet, unit: str) -> np.ndarray:
    """Each image's privacy unit, as the site keys it."""
    return data.patient_keys() if unit == "patient" else np.arange(len(data)).astype(str)


def with_canaries(site_data: ImageSet, canaries: ImageSet, included: np.ndarray, unit: str):
    """(training set, privacy-unit keys): the site's data plus the included canaries, each
    canary its own unit."""
    chosen = canaries.subset(np.flatnonzero(included))
    keys = site_unit_keys(site_data, unit)
    images = np.concatenate([site_data.images, chosen.images])
    labels = np.concatenate([site_data.labels, chosen.labels])
    data = ImageSet(images, labels, site_data.class_names, site_data.multi_label)
    canary_keys = np.array([f"canary-{i}" for i in range(len(chosen))])
    return data, np.concatenate([keys.astype(str), canary_keys])


def canary_contributions(
    shadow: torch.nn.Module, weights: dict, images: torch.Tensor, labels: torch.Tensor, clip: float
) -> torch.Tensor:
    """(canaries, parameters): what each canary, as a real row, would add to D's gradient sum
    at `weights`: its gradient clipped to `clip`. `shadow` is a discriminator of the same
    architecture without Opacus' hooks, which functorch cannot run through."""

    def loss(weights, image, label):
        logit = functional_call(shadow, weights, (image[None], label[None]))
        return F.softplus(-logit).sum()

    gradients = vmap(grad(loss), in_dims=(None, 0, 0))(weights, images, labels)
    flat = torch.cat([g.flatten(1) for g in gradients.values()], dim=1)
    return flat * (clip / flat.norm(dim=1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)


def included_fit(contributions: torch.Tensor, released: torch.Tensor):
    """(weights, their variances up to the noise's): the least-squares weights of the canaries'
    contributions in the released sum, plus noise of variance sigma^2 C^2 times the second.
    Through the (canaries x canaries) normal equations: much cheaper than least squares over
    the parameters."""
    inverse = torch.linalg.pinv(contributions @ contributions.T, hermitian=True)
    return inverse @ (contributions @ released), inverse.diagonal()


class CanaryScores:
    """Each canary's evidence of inclusion, from the steps' released gradients (on_step);
    the gradients are computed on the trainer's device, the evidence kept on the CPU."""

    def __init__(
        self,
        trainer: DPGANTrainer,
        canaries: ImageSet,
        site: tuple[ImageSet, np.ndarray],
        config,
        refresh: int,
    ):
        self.trainer = trainer
        device = trainer.device
        self.canaries = to_tensors(canaries, device)
        site_data, unit_keys = site
        self.site = to_tensors(site_data, device)
        # A sampled unit adds one of its images, each with the same chance (PoissonSampler).
        _, unit_of_image, unit_sizes = np.unique(unit_keys, return_inverse=True, return_counts=True)
        weights = trainer.dp.sample_rate / unit_sizes[unit_of_image]
        self.site_weights = torch.from_numpy(weights).to(device)
        self.shadow = build_models(canaries.num_classes, canaries.resolution, config.model)[1]
        self.shadow.to(device)
        self.clip = trainer.dp.max_grad_norm if trainer.dp.private else math.inf
        # Both private and non-private steps divide the gradient sum by the batch size.
        self.scale = config.training.batch_size
        self.refresh = refresh
        self.evidence = torch.zeros(len(canaries), dtype=torch.float64)
        self.precision = torch.zeros(len(canaries), dtype=torch.float64)
        self._start_block()

    def _start_block(self) -> None:
        # D's weights change only in its own step, so these are the ones the next step uses.
        weights = {n: p.detach() for n, p in self.trainer.discriminator.named_parameters()}
        self.contributions = canary_contributions(
            self.shadow, weights, *self.canaries, self.clip
        ).double()
        # What the site's own records add on average: known to the attacker, so removed.
        self.expected_site = self.contributions.new_zeros(self.contributions.shape[1])
        for start in range(0, len(self.site_weights), SITE_CHUNK):
            rows = slice(start, start + SITE_CHUNK)
            site_rows = canary_contributions(
                self.shadow, weights, self.site[0][rows], self.site[1][rows], self.clip
            )
            self.expected_site += self.site_weights[rows] @ site_rows.double()
        self.released, self.block_steps = 0.0, 0

    def on_step(self) -> None:
        released = released_gradient(self.trainer).double() * self.scale
        self.released = self.released + released - self.expected_site
        self.block_steps += 1
        if self.block_steps == self.refresh:
            self._close_block()
            self._start_block()

    def _close_block(self) -> None:
        """Fit the block's summed gradient; an included canary's weight is about the block's
        step count, with noise variance that count times `variance`."""
        if self.block_steps == 0:
            return
        fitted, variance = included_fit(self.contributions, self.released)
        self.evidence += (fitted / variance).cpu()
        self.precision += (self.block_steps / variance).cpu()
        self.block_steps = 0

    def scores(self) -> np.ndarray:
        """Evidence in units of its noise: about N(0, 1) for an excluded canary."""
        self._close_block()
        return (self.evidence / self.precision.sqrt().clamp(min=1e-300)).numpy()


def released_gradient(trainer: DPGANTrainer) -> torch.Tensor:
    """The step's noised gradient, flat: what DP-SGD releases each step (DPOptimizer leaves it
    in .grad, and the generator step does not touch D's)."""
    return torch.cat([p.grad.flatten() for p in trainer.discriminator.parameters()])


def audit_site(
    site_data: ImageSet,
    config,
    *,
    dp: DPSettings,
    steps: int,
    canary_count: int,
    seed: int,
    device: torch.device = CPU,
) -> dict:
    """Train one site with canaries under the DP-SGD settings `dp` (the ledger's, or a test's
    broken ones) on `device`; the canaries' scores and inclusion bits.

    Batches and noise come from `seed` too, so an audit is reproducible: it releases nothing,
    and a fixed seed does not change the distribution the bounds are about.
    """
    rng = np.random.default_rng(seed)
    canaries = make_canaries(canary_count, site_data, rng)
    included = rng.random(canary_count) < 0.5
    data, keys = with_canaries(site_data, canaries, included, config.privacy.unit)
    torch.manual_seed(seed)
    trainer = DPGANTrainer(data, keys, config.model, config.training, dp, device, secret_seed=seed)
    site = (site_data, site_unit_keys(site_data, config.privacy.unit))
    scores = CanaryScores(trainer, canaries, site, config, refresh=max(1, steps // REFRESHES))
    with tqdm(total=steps, desc="DP audit training", unit="step", leave=False) as bar:

        def on_step() -> None:
            scores.on_step()
            bar.update(1)

        trainer.train(steps, on_step=on_step)
    return {"scores": scores.scores(), "included": included}


def site_data(context: AttackContext, site: int) -> ImageSet:
    """The audited site's training images, from the run's split."""
    return context.run.members.subset(np.flatnonzero(member_sites(context.run) == site))


def audit_result(*, findings: dict, bound_detail: str, subject: str, remedy: str) -> AttackResult:
    """An audit's result from its findings (with lower_bound, ceiling, accountant_epsilon):
    whether the bound is a violation, and whether the claim was testable at all."""
    lower, ceiling = findings["lower_bound"], findings["ceiling"]
    claimed = findings["accountant_epsilon"]
    violation = is_violation(lower, claimed)
    note = untestable_note(ceiling=ceiling, claimed=claimed, remedy=remedy)
    claim = "inf (non-private)" if math.isinf(claimed) else f"{claimed:.3f}"
    details = f"{bound_detail}; " if bound_detail else ""
    return AttackResult(
        findings={**findings, "claim_testable": not note, "violation": bool(violation)},
        leaked=bool(violation or lower > 0),
        summary=(
            f"{'PRIVACY VIOLATION: ' if violation else ''}empirical epsilon >= {lower:.3f} "
            f"({details}95% confidence; ceiling {ceiling:.2f}) vs the accountant's {claim} "
            f"for {subject}" + (f"; {note}" if note else "")
        ),
    )


def is_violation(lower_bound: float, accountant_epsilon: float) -> bool:
    """An empirical lower bound above the accountant's epsilon: the DP claim is false."""
    return lower_bound > accountant_epsilon + 1e-9


# The audit that checks each mechanism a training method's sites record in their ledgers.
AUDIT_OF_MECHANISM = {"dp-sgd": "dp-audit", "release": "release-audit"}


def site_ledger(
    run: RunData, site: int, mechanism: str, taken: str
) -> tuple[PrivacyLedger | None, str]:
    """(the site's ledger, "") when the run's training method records `mechanism`, the one the
    audit checks; otherwise (None, why not). `taken`: what the audit takes from the ledger."""
    method = method_for(run.config)
    if mechanism not in method.ledger_mechanisms:
        checked = [name for name in METHODS if mechanism in METHODS.get(name).ledger_mechanisms]
        others = [AUDIT_OF_MECHANISM[m] for m in method.ledger_mechanisms]
        recorded = " and ".join(repr(m) for m in method.ledger_mechanisms)
        return None, (
            f"the run trained with training.method={method.name}, whose sites record "
            f"{recorded} in their ledgers; this audit checks {mechanism!r} "
            f"(training.method={' or '.join(checked)})"
            + (f"; {' and '.join(others)} checks this run" if others else "")
        )
    path = RunFolder(run.run_dir).site(site).ledger
    if not path.exists():
        return None, f"no privacy ledger at {path} to take {taken} from"
    ledger = PrivacyLedger.open(path, **PrivacyLedger.read_settings(path))
    if not any(entry.mechanism == mechanism for entry in ledger.entries):
        return None, f"site {site}'s ledger at {path} holds no {mechanism!r} entry"
    return ledger, ""


def bounds(audit: dict, delta: float) -> dict:
    """Both bounds at 97.5% (the larger then holds at 95%, Bonferroni) and their ceiling."""
    scores, included = audit["scores"], audit["included"]
    one_run = one_run_epsilon(scores=scores, included=included, confidence=0.975)
    clopper = clopper_pearson_epsilon(
        scores=scores, included=included, delta=delta, confidence=0.975
    )
    ceiling = max(
        one_run_ceiling(included=included, confidence=0.975),
        clopper_pearson_ceiling(included=included, delta=delta, confidence=0.975),
    )
    return {
        "one_run_lower_bound": one_run,
        "clopper_pearson_lower_bound": clopper,
        "lower_bound": max(one_run["epsilon"], clopper["epsilon"]),
        "ceiling": ceiling,
    }


@register(
    "dp-audit",
    MECHANISM_AUDIT,
    "one-run DP audit of a site's DP-SGD with canaries (Steinke et al. 2023) and the "
    "Clopper-Pearson bound over thresholds, against the accountant's epsilon",
    "higher score (the canary's fitted weight in the released noised gradients, over all "
    "steps) = canary was included",
)
def attack(context: AttackContext) -> AttackResult:
    options, config = context.options, context.run.config
    site = options.audit_site
    ledger, why_not = site_ledger(context.run, site, "dp-sgd", "the DP-SGD settings")
    if ledger is None:
        return AttackResult(skipped=why_not)
    sigma, rate, delta = ledger.noise_multiplier, ledger.sample_rate, ledger.delta
    # Only the DP-SGD steps: a release or size estimate in the same ledger is another mechanism.
    run_steps = ledger.steps
    steps = min(options.audit_steps, run_steps) if options.audit_steps else run_steps
    claimed = epsilon_spent([(sigma, rate, steps)], delta=delta, accountant=ledger.accountant)
    audit = audit_site(
        site_data(context, site),
        config,
        dp=DPSettings(sigma, config.privacy.max_grad_norm, rate),
        steps=steps,
        canary_count=options.audit_canaries,
        seed=options.seed,
        device=context.device,
    )
    found = bounds(audit, delta)
    detail = (
        f"one-run {found['one_run_lower_bound']['epsilon']:.3f}, Clopper-Pearson "
        f"{found['clopper_pearson_lower_bound']['epsilon']:.3f}"
    )
    return audit_result(
        findings={
            "site": site_name(site),
            "audit_steps": steps,
            "run_steps": run_steps,
            "noise_multiplier": sigma,
            "sample_rate": rate,
            "delta": delta,
            "canaries": options.audit_canaries,
            "canaries_included": int(audit["included"].sum()),
            "accountant_epsilon": claimed,
            **found,
        },
        bound_detail=detail,
        subject=f"{steps} steps of {site_name(site)}",
        remedy="audit fewer steps (--audit-steps) or use more canaries (--audit-canaries)",
    )
