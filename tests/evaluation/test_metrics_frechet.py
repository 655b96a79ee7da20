"""Fréchet distance: zero for identical sets, the closed form for Gaussians."""

import numpy as np
import pytest

from evaluation.metrics.frechet import frechet_distance


def test_identical_sets_are_at_distance_zero():
    features = np.random.default_rng(0).normal(size=(300, 8))

    assert frechet_distance(features, features)["frechet_distance"] == pytest.approx(0, abs=1e-6)


def test_known_value_from_means_and_variances():
    # Means 0 and 0; variances 2 and 8 (ddof 1): 2 + 8 - 2 * sqrt(2 * 8) = 2.
    real = np.array([[-1.0], [1.0]])
    synthetic = np.array([[-2.0], [2.0]])

    assert frechet_distance(real, synthetic)["frechet_distance"] == pytest.approx(2.0)


def test_shifted_gaussians_are_at_the_squared_shift():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(4000, 4))
    synthetic = rng.normal(size=(4000, 4)) + np.array([3.0, 0.0, 4.0, 0.0])

    assert frechet_distance(real, synthetic)["frechet_distance"] == pytest.approx(25.0, rel=0.02)


def test_more_dimensions_than_images_still_gives_a_finite_distance():
    rng = np.random.default_rng(0)

    distance = frechet_distance(rng.normal(size=(10, 64)), rng.normal(size=(12, 64)))

    assert np.isfinite(distance["frechet_distance"])


def test_a_single_image_has_no_distance():
    assert np.isnan(frechet_distance(np.ones((1, 3)), np.ones((5, 3)))["frechet_distance"])


def test_agrees_with_a_general_matrix_square_root():
    from scipy import linalg

    rng = np.random.default_rng(1)
    real, synthetic = rng.normal(size=(200, 5)), rng.normal(size=(150, 5)) * 1.5 + 0.3
    cov_r, cov_s = np.cov(real, rowvar=False), np.cov(synthetic, rowvar=False)
    expected = np.sum((real.mean(0) - synthetic.mean(0)) ** 2) + np.trace(
        cov_r + cov_s - 2 * linalg.sqrtm(cov_r @ cov_s).real
    )

    assert frechet_distance(real, synthetic)["frechet_distance"] == pytest.approx(expected)
