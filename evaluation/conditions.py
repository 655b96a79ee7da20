"""Images grouped by the condition they carry, in the rows the generator is sampled with."""

import numpy as np

from server.outputs import class_conditions


def condition_groups(
    labels: np.ndarray, class_names: tuple[str, ...], multi_label: bool
) -> list[tuple[str, np.ndarray]]:
    """(row name, indices of images whose label is exactly that condition), one per class and
    for multi-label data also "no finding"; real images with several findings are in none."""
    return [
        (name, np.flatnonzero((labels == condition).all(axis=1)))
        for name, condition in class_conditions(class_names, multi_label)
    ]
