"""Area under the ROC curve per class (one-vs-rest) or per finding, from ranks."""

import numpy as np
from scipy.stats import rankdata


def per_class_auc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC per column of binary labels (N, K) and scores (N, K); NaN where a column has only
    positives or only negatives. Mann-Whitney U with tied scores counted half, like sklearn."""
    positives = labels > 0.5
    n_pos = positives.sum(axis=0)
    n_neg = len(labels) - n_pos
    ranks = rankdata(scores, axis=0)
    rank_sum = np.where(positives, ranks, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
