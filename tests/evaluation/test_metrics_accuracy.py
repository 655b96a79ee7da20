"""Accuracy: top class for single-label data, exact match of all findings for multi-label."""

import numpy as np

from evaluation.metrics.accuracy import accuracy


def test_single_label_accuracy_counts_the_top_class():
    labels = np.eye(3)[[0, 1, 2, 2]]
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.0, 0.1, 0.9]])

    assert accuracy(labels, scores, multi_label=False) == 0.75


def test_multi_label_accuracy_needs_every_finding_right():
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.9, 0.4], [0.2, 0.2], [0.6, 0.0]])

    assert accuracy(labels, scores, multi_label=True) == 0.5
