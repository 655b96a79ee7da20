"""Bootstrap confidence intervals over the test set, paired across models."""

import numpy as np

from evaluation.bootstrap import classification_results

NAMES = ("normal", "pneumonia")


def _labels(n: int = 100) -> np.ndarray:
    return np.eye(2)[np.arange(n) % 2]


def test_a_perfect_classifier_has_auc_1_with_a_degenerate_interval():
    labels = _labels()

    result = classification_results(
        labels, {"TRTR": labels * 0.8 + 0.1}, NAMES, False, "TRTR", 200, 0
    )

    trtr = result["models"]["TRTR"]
    assert trtr["macro_auc"] == {"value": 1.0, "ci95": [1.0, 1.0]}
    assert trtr["auc"]["pneumonia"] == {"value": 1.0, "ci95": [1.0, 1.0]}
    assert trtr["accuracy"]["value"] == 1.0


def test_the_difference_of_a_model_with_itself_is_exactly_zero():
    labels = _labels()
    scores = np.random.default_rng(0).random((100, 2))

    result = classification_results(
        labels, {"TRTR": scores, "TSTR": scores.copy()}, NAMES, False, "TRTR", 200, 0
    )

    assert result["macro_auc_minus_TRTR"]["TSTR"] == {"value": 0.0, "ci95": [0.0, 0.0]}


def test_the_interval_contains_the_estimate_and_the_seed_fixes_it():
    labels = _labels()
    rng = np.random.default_rng(0)
    scores = labels * 0.3 + rng.random((100, 2))

    first = classification_results(labels, {"TRTR": scores}, NAMES, False, "TRTR", 300, 7)
    again = classification_results(labels, {"TRTR": scores}, NAMES, False, "TRTR", 300, 7)

    macro = first["models"]["TRTR"]["macro_auc"]
    assert macro["ci95"][0] < macro["value"] < macro["ci95"][1]
    assert first == again


def test_a_class_without_positives_in_the_test_set_has_no_auc():
    labels = np.zeros((20, 2))
    labels[::2, 0] = 1

    result = classification_results(
        labels, {"TRTR": np.random.default_rng(0).random((20, 2))}, ("a", "b"), True, "TRTR", 50, 0
    )

    assert result["models"]["TRTR"]["auc"]["b"] == {"value": None, "ci95": None}
    assert result["models"]["TRTR"]["macro_auc"]["value"] is not None
