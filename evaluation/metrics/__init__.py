"""Evaluation metrics, one per module, each with one entry function.

Distribution metrics compare real and synthetic feature vectors, (n, D) and (m, D), return
named values, and register in DISTRIBUTION_METRICS so the report lists every one of them.
"""

from collections.abc import Callable

import numpy as np

from common.registry import Registry

DistributionMetric = Callable[[np.ndarray, np.ndarray], dict[str, float]]

DISTRIBUTION_METRICS: Registry[DistributionMetric] = Registry("distribution metric")

# Registration happens on import; after the registry exists.
from evaluation.metrics import frechet, prdc  # noqa: E402, F401
