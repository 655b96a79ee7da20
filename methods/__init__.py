"""Training methods behind one seam (methods.base.TrainingMethod); importing the package
registers every method."""

from methods import dpgan, mean_embedding, mean_embedding_dpgan  # noqa: F401
from methods.base import METHODS, Schedule, TrainingMethod, method_for

__all__ = ["METHODS", "Schedule", "TrainingMethod", "method_for"]
