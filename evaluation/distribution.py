"""Every registered distribution metric, overall and per class, in one feature space."""

import numpy as np

from common.conditions import condition_groups
from evaluation.metrics import DISTRIBUTION_METRICS


def distribution_metrics(real: np.ndarray, synthetic: np.ndarray) -> dict:
    """Every registered metric for one pair of feature sets, with both set sizes."""
    values: dict = {"real_images": len(real), "synthetic_images": len(synthetic)}
    for name in DISTRIBUTION_METRICS:
        for key, value in DISTRIBUTION_METRICS.get(name)(real, synthetic).items():
            values[key] = value if np.isfinite(value) else None
    return values


def distribution_results(
    real_features: np.ndarray,
    real_labels: np.ndarray,
    synthetic_features: np.ndarray,
    synthetic_labels: np.ndarray,
    class_names: tuple[str, ...],
    multi_label: bool,
) -> dict:
    """{"overall": metrics, "per_class": {name: metrics}}; a class compares only images whose
    label is exactly that class (metrics are None where a class has too few images)."""
    real_groups = dict(condition_groups(real_labels, class_names, multi_label))
    synthetic_groups = dict(condition_groups(synthetic_labels, class_names, multi_label))
    return {
        "overall": distribution_metrics(real_features, synthetic_features),
        "per_class": {
            name: distribution_metrics(
                real_features[rows], synthetic_features[synthetic_groups[name]]
            )
            for name, rows in real_groups.items()
        },
    }
