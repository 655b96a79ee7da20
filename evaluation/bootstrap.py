"""Classification results with bootstrap 95% confidence intervals over the real test set.

All models are scored on the same resamples, so the interval of a difference between two
models (e.g. TSTR - TRTR) is paired and narrower than the two intervals suggest.
"""

import warnings

import numpy as np

from evaluation.metrics.accuracy import accuracy
from evaluation.metrics.auc import per_class_auc


def _point(labels: np.ndarray, scores: np.ndarray, multi_label: bool) -> np.ndarray:
    """[AUC per class..., macro AUC, accuracy] on one (re)sample."""
    auc = per_class_auc(labels, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all classes undefined -> NaN
        macro = np.nanmean(auc)
    return np.concatenate([auc, [macro, accuracy(labels, scores, multi_label)]])


def _estimate(value: float, draws: np.ndarray) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [2.5, 97.5])
    if not np.isfinite(value):
        return {"value": None, "ci95": None}
    return {"value": float(value), "ci95": [float(low), float(high)]}


def classification_results(
    labels: np.ndarray,
    scores_by_model: dict[str, np.ndarray],
    class_names: tuple[str, ...],
    multi_label: bool,
    reference: str,
    resamples: int,
    seed: int,
) -> dict:
    """Per model: AUC per class, macro AUC, accuracy; per other model: macro AUC minus the
    reference model's. Each as {"value", "ci95": [low, high]}."""
    rng = np.random.default_rng(seed)
    draws_rows = rng.integers(0, len(labels), size=(resamples, len(labels)))
    points = {name: _point(labels, s, multi_label) for name, s in scores_by_model.items()}
    draws = {
        name: np.stack([_point(labels[rows], s[rows], multi_label) for rows in draws_rows])
        for name, s in scores_by_model.items()
    }
    k = len(class_names)
    results: dict = {"models": {}, "macro_auc_minus_" + reference: {}}
    for name, point in points.items():
        results["models"][name] = {
            "auc": {c: _estimate(point[i], draws[name][:, i]) for i, c in enumerate(class_names)},
            "macro_auc": _estimate(point[k], draws[name][:, k]),
            "accuracy": _estimate(point[k + 1], draws[name][:, k + 1]),
        }
        if name != reference:
            results["macro_auc_minus_" + reference][name] = _estimate(
                point[k] - points[reference][k], draws[name][:, k] - draws[reference][:, k]
            )
    return results
