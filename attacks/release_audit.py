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

Two samples, each giving a Clopper-Pearson bound over the same thresholds
(`attacks.audit_bounds.thresholds_epsilon`) at 97.5%, so that the larger bound holds at 95%:
- whole releases: `release_of_sum` (what `noisy_class_sums` releases) on the full sums, a few
  thousand times in each world, each projected: a bug anywhere between the sum and the
  released arrays shows;
- the projected score itself: the noise step (`add_release_noise`) run on the projected sum,
  |c| with the canary and 0 without, each trial one coordinate of a call: a one-number release
  by the site's noise code. Its score is distributed as the whole release's when the noise
  step adds independent Gaussian noise of one scale to every coordinate (what the ledger
  claims; a bug that breaks this is what the whole-release sample is for), and it is cheap, so
  it can be run hundreds of millions of times: the tight bound comes from it.

Why the bound is valid. The thresholds are fixed before any trial: multiples of the recorded
noise multiplier, and |c| / 2 for a release without noise (float32 values, so that the scores
compare with them exactly). For a fixed threshold t, the number of trials scoring >= t in a
world is Binomial(trials, p), p the probability of that event under the noise the code actually
draws: the whole-release trials are independent calls of the code, and the projected trials
independent coordinates of calls (the code noises coordinates independently, or the projected
score is not the release's score at all; the whole-release sample assumes nothing of the kind).
Clopper-Pearson bounds are exact for a binomial: a lower bound on the rate with the canary and
an upper bound on the rate without it, each at error (1 - 97.5%) / (4 x thresholds) (two rates,
two directions of the test, every threshold: a union bound). So with 97.5% probability
TPR_low <= TPR and FPR_high >= FPR at every threshold at once, and then
(TPR_low - delta) / FPR_high <= (TPR - delta) / FPR <= e^epsilon for a mechanism that is
(epsilon, delta)-DP (and the same for the complementary rates): the best threshold's bound is a
lower bound on the epsilon of the mechanism as run (the whole release, or the one-number
release of the projected sum), and the larger of the two samples' bounds holds at 95%
(Bonferroni). Nothing in a sample's bound depends on the noise being Gaussian or on the
recorded sigma: those only place the thresholds, which costs power, not validity.

Why so many trials, and not importance sampling. At a large epsilon the best threshold lies
where the score without the canary lands about e^-epsilon times as often as with it: at epsilon
10 about once in 10^7 trials. A Clopper-Pearson upper bound on so rare an event is loose unless
the sample holds tens of such events, hence PROJECTED_OUT_TRIALS. The world with the canary
lands there e^epsilon times as often, so a tenth of the trials (PROJECTED_IN_TRIALS) bounds its
rate tightly. Importance sampling (drawing the score without the canary from a proposal shifted
towards the threshold and reweighting) would reach the tail with far fewer trials, but its
weights are a ratio of densities of the noise the code draws. Computed from the recorded sigma,
they would certify the noise the ledger records, not the noise the code adds: a bug in the
noise's scale or shape would leave the weights wrong by a factor that nothing in the sample
bounds. So the audit counts plain tail events of the code's own draws and spends its trials
where they are rare: a projected trial costs about ten nanoseconds, the audit about ten seconds
on a busy 2-core machine. The bound comes within 25% of the PRV accountant's epsilon from 0.5
to 10 (tests/attacks/test_attack_release_audit.py), and a release with half its recorded noise
is flagged.
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
# Projected trials per world. A projected trial costs about 12 ns (one thread: torch's
# generator, then the counting), a whole release about 0.1 ms (10^4 released numbers): the
# audit takes about 10 seconds. Without the canary the tail events are e^epsilon times rarer than
# with it, so that world gets ten times the trials.
PROJECTED_OUT_TRIALS = 400_000_000
PROJECTED_IN_TRIALS = 40_000_000
RELEASE_TRIALS = 5_000
CHUNK = 1 << 20
# The best thresholds lie 3 to 5.5 sigma above the no-canary mean for epsilon 0.5 to 10, and
# up to 8 for a release with half its recorded noise; the whole releases' lower, about 2 to 3.
THRESHOLDS_IN_SIGMA = np.arange(0.5, 8.01, 0.25)
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
    """Fixed before any trial: multiples of the recorded noise, and midway for no noise. Each a
    float32 value, so that the noise step's float32 scores compare with them exactly."""
    cuts = [float(noise_multiplier * z) for z in THRESHOLDS_IN_SIGMA] + [canary_norm / 2]
    return torch.unique(torch.tensor(cuts, dtype=torch.float32)).double()


def _at_or_above(scores: torch.Tensor, cuts: torch.Tensor) -> np.ndarray:
    """How many scores are >= each cut (sorted, and values of the scores' dtype)."""
    cuts_as_scores = cuts.to(scores.dtype)
    if not torch.equal(cuts_as_scores.double(), cuts.double()):
        raise ValueError("the cuts must be values of the scores' dtype to compare exactly")
    counts = np.zeros(len(cuts), dtype=np.int64)
    left = scores
    for index, cut in enumerate(cuts_as_scores):
        above = left >= cut
        counts[index] = int(torch.count_nonzero(above))
        if counts[index] == 0:
            break
        # A score below this cut is below every later one: once few are left, keep only
        # those (a comparison costs a tenth of the selection).
        if 8 * counts[index] < left.numel():
            left = left[above]
    return counts


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
    projected = torch.full((CHUNK,), shift, dtype=torch.float32)
    with _one_thread():
        for start in range(0, trials, CHUNK):
            scores = site_release.add_release_noise(
                projected[: min(CHUNK, trials - start)],
                noise_multiplier=noise_multiplier,
                generator=generator,
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
    for each cost 100 times the operation (4 ms instead of 25 us, 2 cores). The projected
    trials' large ones gain little from a second thread on an idle machine and lose five times
    on a busy one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _bound(
    counts: dict[str, np.ndarray], trials: dict[str, int], delta: float, cuts: torch.Tensor
) -> dict:
    best = thresholds_epsilon(
        true_positives=counts["in"],
        positives=trials["in"],
        false_positives=counts["out"],
        negatives=trials["out"],
        delta=delta,
        confidence=SAMPLE_CONFIDENCE,
    )
    index = best.pop("threshold_index")
    return {
        **best,
        "threshold": None if index is None else float(cuts[index]),
        "trials_in": trials["in"],
        "trials_out": trials["out"],
    }


def _ceiling(trials: dict[str, int], cuts: torch.Tensor, delta: float) -> float:
    return thresholds_ceiling(
        positives=trials["in"],
        negatives=trials["out"],
        thresholds=len(cuts),
        delta=delta,
        confidence=SAMPLE_CONFIDENCE,
    )


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
    projected_in_trials: int = PROJECTED_IN_TRIALS,
    projected_out_trials: int = PROJECTED_OUT_TRIALS,
) -> dict:
    """Rerun the release's noise on the sums without and with the canary: both bounds, the
    larger one (95%) and its ceiling. Seeded: an audit releases nothing."""
    without, with_canary = without.double(), with_canary.double()
    difference = with_canary - without
    canary_norm = float(difference.norm())
    direction = difference / canary_norm
    cuts = score_thresholds(noise_multiplier=noise_multiplier, canary_norm=canary_norm)
    generator = torch.Generator().manual_seed(seed)
    whole_trials = {"in": release_trials, "out": release_trials}
    whole = {
        name: release_counts(
            total=total,
            without=without,
            direction=direction,
            dim=dim,
            noise_multiplier=noise_multiplier,
            count_share=count_share,
            trials=whole_trials[name],
            cuts=cuts,
            generator=generator,
        )
        for name, total in (("in", with_canary), ("out", without))
    }
    projected_trials = {"in": projected_in_trials, "out": projected_out_trials}
    projected = {
        name: projected_counts(
            shift=shift,
            noise_multiplier=noise_multiplier,
            trials=projected_trials[name],
            cuts=cuts,
            generator=generator,
        )
        for name, shift in (("in", canary_norm), ("out", 0.0))
    }
    whole_bound = _bound(whole, whole_trials, delta, cuts)
    projected_bound = _bound(projected, projected_trials, delta, cuts)
    return {
        "canary_contribution_norm": canary_norm,
        "whole_release_lower_bound": whole_bound,
        "projected_lower_bound": projected_bound,
        "lower_bound": max(whole_bound["epsilon"], projected_bound["epsilon"]),
        "ceiling": max(
            _ceiling(whole_trials, cuts, delta), _ceiling(projected_trials, cuts, delta)
        ),
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
        remedy="more trials without the canary (PROJECTED_OUT_TRIALS) raise it",
    )
