"""Fréchet distance between Gaussians fitted to two feature sets (the formula of FID).

In privsynth the features come from the project's own classifier trained on real images of
the dataset, not from Inception-v3, so values are not comparable with published FID scores.
"""

import numpy as np
from scipy import linalg

from evaluation.metrics import DISTRIBUTION_METRICS


@DISTRIBUTION_METRICS.register("frechet_distance")
def frechet_distance(real: np.ndarray, synthetic: np.ndarray) -> dict[str, float]:
    """|mu_r - mu_s|^2 + Tr(C_r + C_s - 2 (C_r C_s)^(1/2)); NaN with fewer than 2 images."""
    if len(real) < 2 or len(synthetic) < 2:
        return {"frechet_distance": float("nan")}
    real, synthetic = real.astype(np.float64), synthetic.astype(np.float64)
    mu_r, mu_s = real.mean(axis=0), synthetic.mean(axis=0)
    cov_r = np.atleast_2d(np.cov(real, rowvar=False))
    cov_s = np.atleast_2d(np.cov(synthetic, rowvar=False))
    covmean = linalg.sqrtm(cov_r @ cov_s)
    if not np.isfinite(covmean).all():
        # Singular product (fewer images than dimensions): regularise as pytorch-fid does.
        offset = np.eye(len(cov_r)) * 1e-6
        covmean = linalg.sqrtm((cov_r + offset) @ (cov_s + offset))
    distance = np.sum((mu_r - mu_s) ** 2) + np.trace(cov_r + cov_s - 2 * covmean.real)
    # Rounding can leave identical sets a hair below zero.
    return {"frechet_distance": float(max(distance, 0.0))}
