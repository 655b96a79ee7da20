"""Poisson sampling over privacy units (images or patients), as DP-SGD's accountant assumes."""

import numpy as np


class PoissonSampler:
    """Each unit joins a batch independently with probability `sample_rate`.

    For the patient unit a unit is a patient; a sampled patient contributes one of their
    images chosen at random, so one step touches at most one image per patient and the
    accountant's guarantee holds per patient.
    """

    def __init__(self, unit_keys: np.ndarray, sample_rate: float, rng: np.random.Generator):
        order = np.argsort(unit_keys, kind="stable")
        _, starts, counts = np.unique(unit_keys[order], return_index=True, return_counts=True)
        self._members = order
        self._starts = starts
        self._counts = counts
        self.sample_rate = sample_rate
        self._rng = rng

    @property
    def num_units(self) -> int:
        return len(self._starts)

    def sample(self) -> np.ndarray:
        chosen = np.flatnonzero(self._rng.random(self.num_units) < self.sample_rate)
        offsets = (self._rng.random(len(chosen)) * self._counts[chosen]).astype(np.int64)
        return self._members[self._starts[chosen] + offsets]
