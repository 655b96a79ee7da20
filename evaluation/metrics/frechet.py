"""Fréchet distance between Gaussians fitted to two feature sets (the formula of FID).

In privsynth the features come from the project's own classifier trained on real images of
the dataset, not from Inception-v3, so values are not comparable with published FID scores.
"""

import numpy as np

from evaluation.metrics import DISTRIBUTION_METRICS


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """Tr((A B)^(1/2)) for covariance matrices, as the sum of the square roots of the
    eigenvalues of the symmetric A^(1/2) B A^(1/2) (same spectrum as A B). Unlike a general
    matrix square root this stays exact when there are fewer images than dimensions."""
    root_a = _psd_sqrt(cov_a)
    values = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sqrt(np.clip(values, 0, None)).sum())


@DISTRIBUTION_METRICS.register("frechet_distance")
def frechet_distance(real: np.ndarray, synthetic: np.ndarray) -> dict[str, float]:
    """|mu_r - mu_s|^2 + Tr(C_r + C_s - 2 (C_r C_s)^(1/2)); NaN with fewer than 2 images."""
    if len(real) < 2 or len(synthetic) < 2:
        return {"frechet_distance": float("nan")}
    real, synthetic = real.astype(np.float64), synthetic.astype(np.float64)
    cov_r = np.atleast_2d(np.cov(real, rowvar=False))
    cov_s = np.atleast_2d(np.cov(synthetic, rowvar=False))
    distance = (
        np.sum((real.mean(axis=0) - synthetic.mean(axis=0)) ** 2)
        + np.trace(cov_r)
        + np.trace(cov_s)
        - 2 * _trace_sqrt_product(cov_r, cov_s)
    )
    # Rounding can leave identical sets a hair below zero.
    return {"frechet_distance": float(max(distance, 0.0))}
