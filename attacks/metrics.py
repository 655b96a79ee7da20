"""Membership metrics: AUC, TPR at low FPR with bootstrap CIs, balanced accuracy, ROC curve.

Scores are oriented so that higher means "member"; every attack flips its raw statistic to
match. Low-FPR numbers are what matter for privacy (Carlini et al. 2022): an attack that finds
a few members with certainty is a leak even at AUC 0.5.
"""

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

FPR_TARGETS = (0.01, 0.001)
BOOTSTRAP_ROUNDS = 200
CONFIDENCE = 0.95


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The best TPR among thresholds whose FPR is at most `target`."""
    return float(tpr[fpr <= target].max(initial=0.0))


def _curve(member_scores: np.ndarray, nonmember_scores: np.ndarray):
    truth = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    scores = np.r_[member_scores, nonmember_scores]
    fpr, tpr, _ = roc_curve(truth, scores)
    return truth, scores, fpr, tpr


def _by_group(scores: np.ndarray, groups: np.ndarray | None) -> list[np.ndarray]:
    """The scores split by group (patient); each score its own group without groups."""
    if groups is None:
        return [scores[i : i + 1] for i in range(len(scores))]
    _, index = np.unique(groups, return_inverse=True)
    order = np.argsort(index, kind="stable")
    return np.split(scores[order], np.flatnonzero(np.diff(index[order])) + 1)


def _resample(by_group: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A bootstrap sample of whole groups."""
    return np.concatenate([by_group[g] for g in rng.integers(0, len(by_group), len(by_group))])


def membership_metrics(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    seed: int = 0,
    member_groups: np.ndarray | None = None,
    nonmember_groups: np.ndarray | None = None,
) -> dict:
    """Metrics of one membership score; `roc` holds the curve for plotting.

    *_groups: the patient of each score. Images of one patient are not independent, so the
    bootstrap then resamples patients, which widens the CIs where few patients carry a result.
    """
    member_scores = np.asarray(member_scores, dtype=np.float64)
    nonmember_scores = np.asarray(nonmember_scores, dtype=np.float64)
    truth, scores, fpr, tpr = _curve(member_scores, nonmember_scores)
    rng = np.random.default_rng(seed)
    boot_auc, boot_tpr = [], {target: [] for target in FPR_TARGETS}
    member_groups = _by_group(member_scores, member_groups)
    nonmember_groups = _by_group(nonmember_scores, nonmember_groups)
    for _ in range(BOOTSTRAP_ROUNDS):
        m, n = _resample(member_groups, rng), _resample(nonmember_groups, rng)
        _, boot_scores, b_fpr, b_tpr = _curve(m, n)
        boot_auc.append(roc_auc_score(np.r_[np.ones(len(m)), np.zeros(len(n))], boot_scores))
        for target in FPR_TARGETS:
            boot_tpr[target].append(tpr_at_fpr(b_fpr, b_tpr, target))
    tail = (1 - CONFIDENCE) / 2 * 100
    low_fpr = {}
    for target in FPR_TARGETS:
        # With n non-members the smallest non-zero FPR is 1/n: below that the number is 0 or
        # an artefact of ties, so it is reported but marked unresolved.
        resolved = len(nonmember_scores) * target >= 1
        low_fpr[f"{target:g}"] = {
            "tpr": tpr_at_fpr(fpr, tpr, target),
            "ci": np.percentile(boot_tpr[target], [tail, 100 - tail]).tolist(),
            "resolved": bool(resolved),
            "note": ""
            if resolved
            else f"{len(nonmember_scores)} non-members cannot resolve FPR {target:g} "
            f"(needs >= {int(np.ceil(1 / target))})",
        }
    return {
        "members": int(len(member_scores)),
        "nonmembers": int(len(nonmember_scores)),
        "auc": float(roc_auc_score(truth, scores)),
        "auc_ci": np.percentile(boot_auc, [tail, 100 - tail]).tolist(),
        "tpr_at_fpr": low_fpr,
        # Best threshold (Youden): an upper estimate of what one threshold achieves.
        "balanced_accuracy": float((1 + np.max(tpr - fpr)) / 2),
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
    }
