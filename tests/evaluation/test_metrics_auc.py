"""AUC per class from ranks: known answers and agreement with scikit-learn."""

import numpy as np
from sklearn.metrics import roc_auc_score

from evaluation.metrics.auc import per_class_auc


def test_a_perfect_ranking_scores_1_and_a_reversed_one_0():
    labels = np.array([[0], [0], [1], [1]])
    scores = np.array([[0.1], [0.2], [0.8], [0.9]])

    assert per_class_auc(labels, scores).tolist() == [1.0]
    assert per_class_auc(labels, -scores).tolist() == [0.0]


def test_constant_scores_give_one_half():
    labels = np.array([[0], [1], [0], [1]])

    assert per_class_auc(labels, np.full((4, 1), 0.3)).tolist() == [0.5]


def test_agrees_with_sklearn_per_column_including_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(200, 3))
    scores = rng.integers(0, 10, size=(200, 3)) / 10  # many ties

    auc = per_class_auc(labels, scores)

    expected = [roc_auc_score(labels[:, k], scores[:, k]) for k in range(3)]
    np.testing.assert_allclose(auc, expected)


def test_a_column_without_positives_is_nan():
    labels = np.array([[0, 1], [0, 0], [0, 1]])

    auc = per_class_auc(labels, np.array([[0.1, 0.9], [0.2, 0.1], [0.3, 0.8]]))

    assert np.isnan(auc[0])
    assert auc[1] == 1.0
