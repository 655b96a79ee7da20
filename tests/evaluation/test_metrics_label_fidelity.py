"""Label fidelity: the share of images a real-trained classifier puts in their class."""

import numpy as np

from evaluation.metrics.label_fidelity import label_fidelity


def test_single_label_fidelity_per_class_and_overall():
    conditions = np.eye(2)[[0, 0, 1, 1]]
    scores = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.1, 0.9]])

    result = label_fidelity(conditions, scores, ("normal", "pneumonia"), multi_label=False)

    assert result == {"overall": 0.75, "per_class": {"normal": 0.5, "pneumonia": 1.0}}


def test_multi_label_no_finding_images_must_have_no_finding_scored():
    conditions = np.array([[0, 0], [0, 0], [1, 0], [0, 1]], dtype=np.float32)
    scores = np.array([[0.1, 0.2], [0.7, 0.2], [0.9, 0.1], [0.8, 0.9]])

    result = label_fidelity(conditions, scores, ("opacity", "nodule"), multi_label=True)

    assert result["per_class"] == {"no finding": 0.5, "opacity": 1.0, "nodule": 0.0}
    assert result["overall"] == 0.5


def test_a_class_without_images_has_no_value():
    result = label_fidelity(np.eye(2)[[0]], np.array([[0.8, 0.2]]), ("a", "b"), multi_label=False)

    assert result["per_class"]["b"] is None
