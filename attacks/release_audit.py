"""Release audit: an empirical epsilon lower bound for a site's mean-embedding release, next to
the accountant's.

Threat model: the strongest one DP promises to hold against: the attacker knows every record
of the site and the features, sees the release, and must tell whether one more unit, the
canary, was in the site's data. The canary is a noise image with a random label, far from the
data, repeated CANARY_COPIES times when a unit is a patient: its contribution before the clip
then has norm at least CANARY_COPIES, so a release that does not clip shows.
The release is one Gaussian mechanism, so the audit reruns it: the sums without and with the
canary come once from the site's code (`unit_contributions` on the site's data and the run's
features), and only the noise is drawn again, many times, by the site's own noise code.
Score: the release minus the sum without the canary, projected on the canary's contribution c
(the sum with it minus the sum without): N(0, sigma^2) without the canary and N(|c|, sigma^2)
with it for the mechanism the ledger records, so the Neyman-Pearson test is a threshold on it.
Thresholds are fixed in advance, in units of the recorded noise; the bound is the
Clopper-Pearson one over them (`attacks.audit_bounds.thresholds_epsilon`), from two samples at
97.5% each, so that the larger bound holds at 95%:
- whole releases: `release_of_sum` (what `noisy_class_sums` releases) on the full sums, a few
  thousand times, each projected: a bug anywhere between the sum and the released arrays shows;
- the projected score itself, tens of millions of times: the noise step (`add_release_noise`)
  run on the projected sum. That is exactly the whole release's score when the noise step adds
  independent Gaussian noise to every coordinate, and it makes the bound tight: within 25% of
  the PRV accountant's epsilon up to 4 (tests/attacks/test_attack_release_audit.py).
The accountant's epsilon is that of the audited release alone, from the site's ledger.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from attacks.audit_bounds import thresholds_ceiling, thresholds_epsilon
from attacks.context import AttackContext
from attacks.dp_audit import audit_result, make_canaries, site_data, site_ledger, site_unit_keys
from attacks.registry import MECHANISM_AUDIT, AttackResult, register
from client import mean_embedding as site_release
from common.data import ImageSet
from common.device import CPU
from common.mean_embedding import RandomFourierFeatures, features_for, release_weights
from common.privacy.accounting import epsilon_spent
from common.run_folder import site_name

CANARY_COPIES = 4
# Trials per world (with and without the canary). A projected one costs about 40 ns, a whole
# release about 0.1 ms (2 CPU cores, 10^4 released numbers): the audit takes seconds.
PROJECTED_TRIALS = 20_000_000
RELEASE_TRIALS = 5_000
CHUNK = 1_000_000
# The best thresholds at these trial counts lie 3 to 5 sigma above the no-canary mean.
THRESHOLDS_IN_SIGMA = np.arange(0.5, 6.01, 0.25)
# Each of the two samples' bounds holds at 97.5%, so the larger of them at 95% (Bonferroni).
SAMPLE_CONFIDENCE = 0.975


def make_canary(like: ImageSet, unit: str, rng: np.random.Generator) -> tuple[ImageSet, np.ndarray]:
    """(canary images, their unit keys): one unit, one noise image, repeated for patients."""
    canary = make_canaries(1, like, rng)
    copies = CANARY_COPIES if unit == "patient" else 1
    return canary.subset(np.zeros(copies, dtype=np.int64)), np.array(["canary"] * copies)


def canary_sums(
    data: ImageSet,
    unit_keys: np.ndarray,
    canary: tuple[ImageSet, np.ndarray],
    features: RandomFourierFeatures,
    count_share: float | None,
    *,
    device: torch.device = CPU,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum without the canary, sum with it) on the CPU, from the site's own code run on
    `device`."""
    images, keys = canary
    joined = ImageSet(
        np.concatenate([data.images, images.images]),
        np.concatenate([data.labels, images.labels]),
        data.class_names,
        data.multi_label,
    )
    all_keys = np.concatenate([unit_keys.astype(str), keys])
    without = site_release.unit_contributions(data, unit_keys, features, count_share, device=device)
    with_canary = site_release.unit_contributions(
        joined, all_keys, features, count_share, device=device
    )
    # The trials' noise is drawn on the CPU, as the site draws its release's noise.
    return without.sum(dim=0).cpu(), with_canary.sum(dim=0).cpu()


def score_thresholds(*, noise_multiplier: float, canary_norm: float) -> torch.Tensor:
    """Fixed before any trial: multiples of the recorded noise, and midway for no noise."""
    cuts = {float(noise_multiplier * z) for z in THRESHOLDS_IN_SIGMA} | {canary_norm / 2}
    return torch.tensor(sorted(cuts), dtype=torch.float64)


def _at_or_above(scores: torch.Tensor, cuts: torch.Tensor) -> np.ndarray:
    """How many scores are >= each cut."""
    # A score is >= cuts[j] exactly when more than j cuts are <= it.
    passed = torch.searchsorted(cuts, scores.double(), right=True).numpy()
    histogram = np.bincount(passed, minlength=len(cuts) + 1)
    return np.cumsum(histogram[::-1])[::-1][1:]


def projected_counts(
    *,
    shift: float,
    noise_multiplier: float,
    trials: int,
    cuts: torch.Tensor,
    generator: torch.Generator,
) -> np.ndarray:
    """Scores at or above each cut among `trials` runs of the noise step on the projected sum."""
    counts = np.zeros(len(cuts), dtype=np.int64)
    for start in range(0, trials, CHUNK):
        projected = torch.full((min(CHUNK, trials - start),), shift, dtype=torch.float32)
        scores = site_release.add_release_noise(
            projected, noise_multiplier=noise_multiplier, generator=generator
        )
        counts += _at_or_above(scores, cuts)
    return counts


def release_counts(
    *,
    total: torch.Tensor,
    without: torch.Tensor,
    direction: torch.Tensor,
    dim: int,
    noise_multiplier: float,
    count_share: float | None,
    trials: int,
    cuts: torch.Tensor,
    generator: torch.Generator,
) -> np.ndarray:
    """Scores at or above each cut among `trials` whole releases of `total`."""
    # The attacker weighs the released arrays back, where the noise is the same on every
    # number; folded into the direction, a score is one dot product with the released numbers.
    feature_weight, count_weight = release_weights(dim, count_share)
    groups = total.numel() // (dim + 1)
    weights = torch.cat(
        [torch.full((groups * dim,), feature_weight), torch.full((groups,), count_weight)]
    )
    released_direction = (weights.double() * direction).float()
    offset = float(without @ direction)
    total = total.float()
    scores = torch.empty(trials, dtype=torch.float64)
    with _one_thread():
        for trial in range(trials):
            release = site_release.release_of_sum(
                total,
                dim=dim,
                noise_multiplier=noise_multiplier,
                count_share=count_share,
                generator=generator,
            )
            released = torch.cat([release["feature_sums"].flatten(), release["counts"]])
            scores[trial] = float(released @ released_direction) - offset
    return _at_or_above(scores, cuts)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Small tensor operations in a Python loop: on a busy machine, waking torch's thread pool
    for each cost 100 times the operation (4 ms instead of 25 us, 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _bound(in_counts, out_counts, trials: int, delta: float, cuts: torch.Tensor) -> dict:
    best = thresholds_epsilon(
        true_positives=in_counts,
        positives=trials,
        false_positives=out_counts,
        negatives=trials,
        delta=delta,
        confidence=SAMPLE_CONFIDENCE,
    )
    index = best.pop("threshold_index")
    return {**best, "threshold": None if index is None else float(cuts[index]), "trials": trials}


def audit_sums(
    *,
    without: torch.Tensor,
    with_canary: torch.Tensor,
    dim: int,
    noise_multiplier: float,
    count_share: float | None,
    delta: float,
    seed: int,
    release_trials: int = RELEASE_TRIALS,
    projected_trials: int = PROJECTED_TRIALS,
) -> dict:
    """Rerun the release's noise on the sums without and with the canary: both bounds, the
    larger one (95%) and its ceiling. Seeded: an audit releases nothing."""
    without, with_canary = without.double(), with_canary.double()
    difference = with_canary - without
    canary_norm = float(difference.norm())
    direction = difference / canary_norm
    cuts = score_thresholds(noise_multiplier=noise_multiplier, canary_norm=canary_norm)
    generator = torch.Generator().manual_seed(seed)
    whole = {
        name: release_counts(
            total=total,
            without=without,
            direction=direction,
            dim=dim,
            noise_multiplier=noise_multiplier,
            count_share=count_share,
            trials=release_trials,
            cuts=cuts,
            generator=generator,
        )
        for name, total in (("in", with_canary), ("out", without))
    }
    projected = {
        name: projected_counts(
            shift=shift,
            noise_multiplier=noise_multiplier,
            trials=projected_trials,
            cuts=cuts,
            generator=generator,
        )
        for name, shift in (("in", canary_norm), ("out", 0.0))
    }
    whole_bound = _bound(whole["in"], whole["out"], release_trials, delta, cuts)
    projected_bound = _bound(projected["in"], projected["out"], projected_trials, delta, cuts)
    ceiling = thresholds_ceiling(
        positives=max(release_trials, projected_trials),
        negatives=max(release_trials, projected_trials),
        thresholds=len(cuts),
        delta=delta,
        confidence=SAMPLE_CONFIDENCE,
    )
    return {
        "canary_contribution_norm": canary_norm,
        "whole_release_lower_bound": whole_bound,
        "projected_lower_bound": projected_bound,
        "lower_bound": max(whole_bound["epsilon"], projected_bound["epsilon"]),
        "ceiling": ceiling,
    }


def audit_release(
    data: ImageSet,
    features: RandomFourierFeatures,
    *,
    unit: str,
    noise_multiplier: float,
    count_share: float | None,
    delta: float,
    seed: int,
    device: torch.device = CPU,
    **trials,
) -> dict:
    """The site's release audited with one canary (audit_sums, `trials` its trial counts); the
    site's sums are computed on `device`."""
    canary = make_canary(data, unit, np.random.default_rng(seed))
    without, with_canary = canary_sums(
        data, site_unit_keys(data, unit), canary, features, count_share, device=device
    )
    return audit_sums(
        without=without,
        with_canary=with_canary,
        dim=features.dim,
        noise_multiplier=noise_multiplier,
        count_share=count_share,
        delta=delta,
        seed=seed,
        **trials,
    )


@register(
    "release-audit",
    MECHANISM_AUDIT,
    "audit of a site's mean-embedding release: its noise rerun with and without a canary unit, "
    "the Clopper-Pearson bound over thresholds, against the accountant's epsilon",
    "higher score (the release minus the sum without the canary, projected on the canary's "
    "contribution) = canary was included",
)
def attack(context: AttackContext) -> AttackResult:
    options, config = context.options, context.run.config
    site = options.audit_site
    ledger, why_not = site_ledger(context.run, site, "release", "the release's noise")
    if ledger is None:
        return AttackResult(skipped=why_not)
    # The least noisy release is the one that must hold its claim.
    sigma = min(entry.noise_multiplier for entry in ledger.entries if entry.mechanism == "release")
    claimed = epsilon_spent([(sigma, 1.0, 1)], delta=ledger.delta, accountant=ledger.accountant)
    audit = audit_release(
        site_data(context, site),
        features_for(config),
        unit=ledger.unit,
        noise_multiplier=sigma,
        count_share=config.mean_embedding.count_share,
        delta=ledger.delta,
        seed=options.seed,
        device=context.device,
    )
    return audit_result(
        findings={
            "site": site_name(site),
            "noise_multiplier": sigma,
            "delta": ledger.delta,
            "accountant": ledger.accountant,
            "unit": ledger.unit,
            "accountant_epsilon": claimed,
            **audit,
        },
        bound_detail="",
        subject=(
            f"{site_name(site)}'s release (noise multiplier {sigma:.4g}, canary contribution norm "
            f"{audit['canary_contribution_norm']:.3f})"
        ),
        remedy="more trials (PROJECTED_TRIALS) raise it",
    )
