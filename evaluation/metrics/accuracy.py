"""Accuracy: the top class for single-label data; every finding right (exact match at a 0.5
threshold) for multi-label data, so a model that always says "no finding" is not rewarded for
the many negatives."""

import numpy as np


def correct_decisions(labels: np.ndarray, scores: np.ndarray, multi_label: bool) -> np.ndarray:
    """Per image, whether the classifier's decision matches the label (N,) bool."""
    if multi_label:
        return ((scores >= 0.5) == (labels > 0.5)).all(axis=1)
    return scores.argmax(axis=1) == labels.argmax(axis=1)


def accuracy(labels: np.ndarray, scores: np.ndarray, multi_label: bool) -> float:
    if len(labels) == 0:
        return float("nan")
    return float(correct_decisions(labels, scores, multi_label).mean())
