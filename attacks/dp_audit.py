"""DP audit: an empirical epsilon lower bound for one site's DP-SGD, next to the accountant's.

Threat model: the strongest one DP promises to hold against: the attacker knows everything but
whether each canary was in the training set, and sees the final discriminator (white-box).
The audit re-runs one site's training (same data, model, DP-SGD code `DPGANTrainer`, noise
multiplier, sample rate and clipping norm as the run's ledger and config) with m canaries,
each included independently with probability 1/2. Canaries are uniform-noise images with
random labels, far from the data.
Score: the gain (after minus before training) of the discriminator's logit on the canary
(higher = included). The bounds rank the scores, so what the discriminator learns about noise
images in general, a shift common to all canaries, does not matter; subtracting the initial
logit removes what the untrained discriminator already says about each canary. The bounds
(`attacks.audit_bounds`) are compared with the accountant's epsilon for exactly the audited
steps; a lower bound above it means the DP implementation does not deliver what the
accountant claims.
The audit trains `audit_steps` steps (default 1000, fewer than the run's thousands, to keep it
within minutes); the accountant's epsilon is computed for those steps.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from attacks.audit_bounds import clopper_pearson_epsilon, one_run_epsilon
from attacks.context import AttackContext
from attacks.embedding import to_tensor
from attacks.registry import MECHANISM_AUDIT, AttackResult, register
from client.training import DPGANTrainer, DPSettings
from common.data import ImageSet
from common.privacy.accounting import epsilon_spent


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


def with_canaries(site_data: ImageSet, canaries: ImageSet, included: np.ndarray, unit: str):
    """(training set, privacy-unit keys): the site's data plus the included canaries, each
    canary its own unit."""
    chosen = canaries.subset(np.flatnonzero(included))
    keys = site_data.patient_keys() if unit == "patient" else np.arange(len(site_data)).astype(str)
    images = np.concatenate([site_data.images, chosen.images])
    labels = np.concatenate([site_data.labels, chosen.labels])
    data = ImageSet(images, labels, site_data.class_names, site_data.multi_label)
    canary_keys = np.array([f"canary-{i}" for i in range(len(chosen))])
    return data, np.concatenate([keys.astype(str), canary_keys])


@torch.no_grad()
def canary_logits(trainer: DPGANTrainer, canaries: ImageSet) -> np.ndarray:
    labels = torch.from_numpy(canaries.labels)
    return trainer.discriminator(to_tensor(canaries.images), labels).numpy()


def audit_site(
    site_data: ImageSet,
    config,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    canary_count: int,
    seed: int,
) -> dict:
    """Train one site with canaries; the canaries' scores and inclusion bits.

    Batches and noise come from `seed` too, so an audit is reproducible: it releases nothing,
    and a fixed seed does not change the distribution the bounds are about.
    """
    rng = np.random.default_rng(seed)
    canaries = make_canaries(canary_count, site_data, rng)
    included = rng.random(canary_count) < 0.5
    data, keys = with_canaries(site_data, canaries, included, config.privacy.unit)
    torch.manual_seed(seed)
    trainer = DPGANTrainer(
        data,
        keys,
        config.model,
        config.training,
        DPSettings(noise_multiplier, config.privacy.max_grad_norm, sample_rate),
        torch.device("cpu"),
        secret_seed=seed,
    )
    before = canary_logits(trainer, canaries)
    with tqdm(total=steps, desc="DP audit training", unit="step", leave=False) as bar:
        trainer.train(steps, on_step=lambda: bar.update(1))
    after = canary_logits(trainer, canaries)
    return {"scores": after - before, "included": included}


def _site_data(context: AttackContext, site: int) -> ImageSet:
    split = json.loads((Path(context.run.run_dir) / "split.json").read_text())
    owned = set(split["sites"][site])
    order = sorted(i for indices in split["sites"] for i in indices)
    return context.run.members.subset(np.array([n for n, i in enumerate(order) if i in owned]))


def is_violation(lower_bound: float, accountant_epsilon: float) -> bool:
    """An empirical lower bound above the accountant's epsilon: the DP claim is false."""
    return lower_bound > accountant_epsilon + 1e-9


@register(
    "dp-audit",
    MECHANISM_AUDIT,
    "one-run DP audit of a site's DP-SGD with canaries (Steinke et al. 2023) and the "
    "Clopper-Pearson bound over thresholds, against the accountant's epsilon",
    "higher score (logit gain on the canary) = canary was included",
)
def attack(context: AttackContext) -> AttackResult:
    options, config = context.options, context.run.config
    site = options.audit_site
    ledger_path = Path(context.run.run_dir) / "sites" / f"site-{site}" / "ledger.json"
    if not ledger_path.exists():
        return AttackResult(skipped=f"no privacy ledger at {ledger_path} to take the settings from")
    ledger = json.loads(ledger_path.read_text())
    if ledger["noise_multiplier"] is None:
        return AttackResult(
            skipped=f"site {site} trained no DP-SGD (its ledger holds only releases, e.g. "
            "training.method=mean_embedding); this audit checks DP-SGD"
        )
    sigma, rate, delta = ledger["noise_multiplier"], ledger["sample_rate"], ledger["delta"]
    # Only the DP-SGD steps: a mean_embedding release in the same ledger is another mechanism.
    run_steps = sum(
        entry["steps"]
        for entry in ledger["entries"]
        if (entry["noise_multiplier"], entry["sample_rate"]) == (sigma, rate)
    )
    steps = min(options.audit_steps, run_steps) if options.audit_steps else run_steps
    claimed = epsilon_spent([(sigma, rate, steps)], delta, ledger["accountant"])
    audit = audit_site(
        _site_data(context, site), config, sigma, rate, steps, options.audit_canaries, options.seed
    )
    # Two bounds, each at 97.5%: the larger of them then holds at 95% (Bonferroni).
    one_run = one_run_epsilon(audit["scores"], audit["included"], confidence=0.975)
    clopper = clopper_pearson_epsilon(audit["scores"], audit["included"], delta, confidence=0.975)
    lower = max(one_run["epsilon"], clopper["epsilon"])
    violation = is_violation(lower, claimed)
    findings = {
        "site": f"site-{site}",
        "audit_steps": steps,
        "run_steps": run_steps,
        "noise_multiplier": sigma,
        "sample_rate": rate,
        "delta": delta,
        "canaries": options.audit_canaries,
        "canaries_included": int(audit["included"].sum()),
        "accountant_epsilon": claimed,
        "one_run_lower_bound": one_run,
        "clopper_pearson_lower_bound": clopper,
        "lower_bound": lower,
        "violation": bool(violation),
    }
    claim = "inf (non-private)" if math.isinf(claimed) else f"{claimed:.3f}"
    verdict = "PRIVACY VIOLATION: " if violation else ""
    return AttackResult(
        findings=findings,
        leaked=bool(violation or lower > 0),
        summary=(
            f"{verdict}empirical epsilon >= {lower:.3f} (one-run {one_run['epsilon']:.3f}, "
            f"Clopper-Pearson {clopper['epsilon']:.3f}; 95% confidence) vs the accountant's "
            f"{claim} for {steps} steps of site-{site}"
        ),
    )
