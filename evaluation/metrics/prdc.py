"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable Fidelity and
Diversity Metrics for Generative Models"), with k-nearest-neighbour balls.

Precision: share of synthetic images inside some real image's ball (realism). Recall: share
of real images inside some synthetic image's ball (diversity). Density: how many real balls a
synthetic image falls in, over k (about 1 when both come from one distribution). Coverage:
share of real images whose ball holds at least one synthetic image; low recall and coverage
mean parts of the real distribution are never generated (mode collapse).
"""

import numpy as np
from scipy.spatial.distance import cdist

from evaluation.metrics import DISTRIBUTION_METRICS

NEIGHBOURS = 5


def _radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point."""
    distances = cdist(features, features)
    # Column 0 after sorting is the point itself (distance 0).
    return np.partition(distances, k, axis=1)[:, k]


@DISTRIBUTION_METRICS.register("prdc")
def prdc(real: np.ndarray, synthetic: np.ndarray, k: int = NEIGHBOURS) -> dict[str, float]:
    """NaN for every value when either set has k images or fewer."""
    if len(real) <= k or len(synthetic) <= k:
        return dict.fromkeys(("precision", "recall", "density", "coverage"), float("nan"))
    real, synthetic = real.astype(np.float64), synthetic.astype(np.float64)
    real_radii = _radii(real, k)
    synthetic_radii = _radii(synthetic, k)
    distances = cdist(real, synthetic)  # (real, synthetic)
    inside_real_ball = distances <= real_radii[:, None]
    return {
        "precision": float(inside_real_ball.any(axis=0).mean()),
        "recall": float((distances <= synthetic_radii[None, :]).any(axis=1).mean()),
        "density": float(inside_real_ball.sum(axis=0).mean() / k),
        "coverage": float((distances.min(axis=1) <= real_radii).mean()),
    }
