"""Label fidelity: does a classifier trained on real images see the class an image was
generated for?"""

import numpy as np

from common.conditions import condition_groups
from evaluation.metrics.accuracy import correct_decisions


def label_fidelity(
    conditions: np.ndarray, scores: np.ndarray, class_names: tuple[str, ...], multi_label: bool
) -> dict:
    """Share of images the classifier assigns to their condition, overall and per class.

    Single-label: the top-scoring class is the generated class. Multi-label: the findings
    scored >= 0.5 are exactly the generated ones (none for a "no finding" image). Classes
    without images get None.
    """
    correct = correct_decisions(conditions, scores, multi_label)
    per_class = {
        name: float(correct[rows].mean()) if len(rows) else None
        for name, rows in condition_groups(conditions, class_names, multi_label)
    }
    overall = float(correct.mean()) if len(correct) else None
    return {"overall": overall, "per_class": per_class}
