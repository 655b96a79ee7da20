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


def one_run_epsilon(scores: np.ndarray, included: np.ndarray, confidence: float = 0.95) -> dict:
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


def clopper_pearson_epsilon(
    scores: np.ndarray,
    included: np.ndarray,
    delta: float,
    confidence: float = 0.95,
    thresholds: int = 20,
) -> dict:
    """Lower bound from exact binomial CIs of TPR and FPR, best over score quantiles."""
    inside, outside = scores[included], scores[~included]
    cuts = np.unique(np.quantile(scores, np.linspace(0.05, 0.95, thresholds)))
    # Two one-sided bounds per threshold and two directions share the error budget.
    level = (1 - confidence) / (4 * len(cuts))
    best = {"epsilon": 0.0, "threshold": None}
    for cut in cuts:
        tp, fp = int((inside >= cut).sum()), int((outside >= cut).sum())
        n_in, n_out = len(inside), len(outside)
        tpr_low = beta.ppf(level, tp, n_in - tp + 1) if tp > 0 else 0.0
        fpr_high = beta.ppf(1 - level, fp + 1, n_out - fp) if fp < n_out else 1.0
        candidates = []
        if tpr_low - delta > 0:
            candidates.append(math.log((tpr_low - delta) / fpr_high))
        if 1 - fpr_high - delta > 0:
            candidates.append(math.log((1 - fpr_high - delta) / (1 - tpr_low)))
        eps = max(candidates, default=0.0)
        if eps > best["epsilon"]:
            best = {"epsilon": float(eps), "threshold": float(cut)}
    return best
