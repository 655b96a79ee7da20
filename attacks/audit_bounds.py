"""Empirical epsilon lower bounds from canary membership scores (higher score = included).

- One-run audit (Steinke, Nasr & Jagielski 2023, Theorem 3.1, pure-DP form): guess "in" for the
  k highest-scoring canaries and "out" for the k lowest. Under epsilon-DP, with canaries
  included independently with probability 1/2, the number of correct guesses among the 2k is
  stochastically dominated by Binomial(2k, e^eps / (1 + e^eps)); the bound is the largest eps
  this rejects at the given confidence. We use the pure-DP statement: their delta correction
  is of order m * delta, negligible for delta = 1e-5 and a few hundred canaries.
- Clopper-Pearson over thresholds (Jagielski et al. 2020, Nasr et al. 2021): at each threshold,
  exact binomial bounds on TPR and FPR give eps >= log((TPR_low - delta) / FPR_high), and the
  same for the complementary rates.
Both take a union bound over the settings they try, so picking the best one stays valid.

Every bound has a ceiling: what a perfect attacker (every guess right, scores perfectly
separated) would certify with the same design and confidence. No claim above the ceiling can be
refuted, whatever the mechanism does, so an audit must say when the claim is above it.
"""

import math

import numpy as np
from scipy.stats import beta, binom

EPSILON_CEILING = 50.0


def _rejected_epsilon(correct: int, guesses: int, level: float) -> float:
    """Largest eps with P[Binomial(guesses, e^eps/(1+e^eps)) >= correct] <= level."""

    def tail(eps: float) -> float:
        return float(binom.sf(correct - 1, guesses, 1 / (1 + math.exp(-eps))))

    if tail(0.0) > level:
        return 0.0
    low, high = 0.0, EPSILON_CEILING
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if tail(middle) <= level else (low, middle)
    return low


def one_run_epsilon(*, scores: np.ndarray, included: np.ndarray, confidence: float = 0.95) -> dict:
    """Steinke et al. one-run lower bound, best over a grid of guess counts."""
    order = np.argsort(scores, kind="stable")
    m = len(scores)
    counts = sorted({k for k in (m // 50, m // 20, m // 10, m // 5, m // 3, m // 2) if k >= 1})
    level = (1 - confidence) / max(1, len(counts))
    best = {"epsilon": 0.0, "guesses": 0, "correct": 0}
    for k in counts:
        correct = int(included[order[-k:]].sum() + (~included[order[:k]]).sum())
        eps = _rejected_epsilon(correct, 2 * k, level)
        if eps > best["epsilon"] or best["guesses"] == 0:
            best = {"epsilon": eps, "guesses": 2 * k, "correct": correct}
    return best


def rates_epsilon(
    *,
    true_positives: int,
    positives: int,
    false_positives: int,
    negatives: int,
    delta: float,
    level: float,
) -> float:
    """The bound at one threshold: one-sided exact (Clopper-Pearson) bounds on TPR and FPR,
    each at error `level`, in eps >= log((TPR_low - delta) / FPR_high) or the same for the
    complementary rates; 0 when neither is positive."""
    tp, fp = true_positives, false_positives
    tpr_low = beta.ppf(level, tp, positives - tp + 1) if tp > 0 else 0.0
    fpr_high = beta.ppf(1 - level, fp + 1, negatives - fp) if fp < negatives else 1.0
    candidates = []
    if tpr_low - delta > 0:
        candidates.append(math.log((tpr_low - delta) / fpr_high))
    if 1 - fpr_high - delta > 0:
        candidates.append(math.log((1 - fpr_high - delta) / (1 - tpr_low)))
    return float(max(candidates, default=0.0))


def _threshold_level(confidence: float, thresholds: int) -> float:
    # Two one-sided bounds per threshold and two directions share the error budget.
    return (1 - confidence) / (4 * thresholds)


def thresholds_epsilon(
    *,
    true_positives: np.ndarray,
    positives: int,
    false_positives: np.ndarray,
    negatives: int,
    delta: float,
    confidence: float = 0.95,
) -> dict:
    """Best rates_epsilon over thresholds fixed before the scores were drawn, union-bounded.

    true_positives[i] / false_positives[i]: positives / negatives scoring at or above
    threshold i. Returns the bound and the index of the threshold that gave it."""
    level = _threshold_level(confidence, len(true_positives))
    best = {"epsilon": 0.0, "threshold_index": None}
    for index, (tp, fp) in enumerate(zip(true_positives, false_positives)):
        eps = rates_epsilon(
            true_positives=int(tp),
            positives=positives,
            false_positives=int(fp),
            negatives=negatives,
            delta=delta,
            level=level,
        )
        if eps > best["epsilon"]:
            best = {"epsilon": eps, "threshold_index": index}
    return best


def thresholds_ceiling(
    *, positives: int, negatives: int, thresholds: int, delta: float, confidence: float = 0.95
) -> float:
    """thresholds_epsilon of a perfect attacker: one threshold with every positive at or above
    it and every negative below."""
    return rates_epsilon(
        true_positives=positives,
        positives=positives,
        false_positives=0,
        negatives=negatives,
        delta=delta,
        level=_threshold_level(confidence, thresholds),
    )


def clopper_pearson_epsilon(
    *,
    scores: np.ndarray,
    included: np.ndarray,
    delta: float,
    confidence: float = 0.95,
    thresholds: int = 20,
) -> dict:
    """Lower bound from exact binomial CIs of TPR and FPR, best over score quantiles."""
    inside, outside = scores[included], scores[~included]
    cuts = np.unique(np.quantile(scores, np.linspace(0.05, 0.95, thresholds)))
    best = thresholds_epsilon(
        true_positives=(inside[None, :] >= cuts[:, None]).sum(axis=1),
        positives=len(inside),
        false_positives=(outside[None, :] >= cuts[:, None]).sum(axis=1),
        negatives=len(outside),
        delta=delta,
        confidence=confidence,
    )
    index = best.pop("threshold_index")
    return {**best, "threshold": None if index is None else float(cuts[index])}


def separated_scores(included: np.ndarray) -> np.ndarray:
    """A perfect attacker's scores: distinct, every included canary above every excluded one."""
    return included.astype(float) + np.arange(len(included)) / (2 * len(included))


def one_run_ceiling(*, included: np.ndarray, confidence: float = 0.95) -> float:
    """The one-run bound a perfect attacker certifies with these canaries."""
    return one_run_epsilon(
        scores=separated_scores(included), included=included, confidence=confidence
    )["epsilon"]


def clopper_pearson_ceiling(
    *, included: np.ndarray, delta: float, confidence: float = 0.95, thresholds: int = 20
) -> float:
    """The Clopper-Pearson bound a perfect attacker certifies with these canaries."""
    scores = separated_scores(included)
    return clopper_pearson_epsilon(
        scores=scores,
        included=included,
        delta=delta,
        confidence=confidence,
        thresholds=thresholds,
    )["epsilon"]


def claim_testable(*, ceiling: float, claimed: float) -> bool:
    """Whether a violation of the claim could be found at all: the ceiling reaches it."""
    return ceiling >= claimed


def untestable_note(*, ceiling: float, claimed: float, remedy: str) -> str:
    """The sentence an audit report must carry when its ceiling is below the claim."""
    if claim_testable(ceiling=ceiling, claimed=claimed):
        return ""
    if math.isinf(claimed):
        return (
            f"the audit cannot test this claim: it is non-private (epsilon inf), above any "
            f"ceiling (this audit's: {ceiling:.2f})"
        )
    return (
        f"the audit cannot test this claim: its ceiling {ceiling:.2f} is below the claimed "
        f"{claimed:.3f}; {remedy}"
    )
