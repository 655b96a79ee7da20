"""Precision, recall, density, coverage (Naeem et al. 2020) on sets with known answers."""

import numpy as np
import pytest

from evaluation.metrics.prdc import prdc


def test_identical_sets_score_1_and_density_k_plus_1_over_k():
    features = np.random.default_rng(0).normal(size=(200, 6))

    values = prdc(features, features, k=5)

    assert values["precision"] == values["recall"] == values["coverage"] == 1.0
    # Each real ball holds its centre and its k nearest neighbours.
    assert values["density"] == pytest.approx(6 / 5)


def test_two_samples_of_one_distribution_score_near_1():
    rng = np.random.default_rng(0)

    values = prdc(rng.normal(size=(1000, 4)), rng.normal(size=(1000, 4)), k=5)

    assert values["precision"] > 0.9
    assert values["recall"] > 0.9
    assert values["density"] == pytest.approx(1.0, abs=0.1)
    assert values["coverage"] > 0.9


def test_disjoint_distributions_score_0():
    rng = np.random.default_rng(0)

    values = prdc(rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 50, k=5)

    assert values == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_collapsed_generator_is_precise_but_covers_little():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 2))
    collapsed = rng.normal(scale=0.05, size=(500, 2))  # all near one real mode

    values = prdc(real, collapsed, k=5)

    assert values["precision"] > 0.9
    assert values["recall"] < 0.2
    assert values["coverage"] < 0.2


def test_too_few_images_give_nan():
    values = prdc(np.zeros((5, 2)), np.zeros((50, 2)), k=5)

    assert all(np.isnan(v) for v in values.values())
