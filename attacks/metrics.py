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


def membership_metrics(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, seed: int = 0
) -> dict:
    """Metrics of one membership score; `roc` holds the curve for plotting."""
    member_scores = np.asarray(member_scores, dtype=np.float64)
    nonmember_scores = np.asarray(nonmember_scores, dtype=np.float64)
    truth, scores, fpr, tpr = _curve(member_scores, nonmember_scores)
    rng = np.random.default_rng(seed)
    boot_auc, boot_tpr = [], {target: [] for target in FPR_TARGETS}
    for _ in range(BOOTSTRAP_ROUNDS):
        m = rng.choice(member_scores, len(member_scores))
        n = rng.choice(nonmember_scores, len(nonmember_scores))
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
