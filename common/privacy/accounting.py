"""Privacy math: noise calibration and epsilon from Opacus' accountants. Stateless."""

import math
import warnings
from collections import Counter

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

# With few steps (or much noise) the best RDP order is the largest (smallest) one tried; the
# bound is still valid, only looser, so the warning is noise for users.
warnings.filterwarnings("ignore", message="Optimal order is the (largest|smallest) alpha")
# PRV takes log(1 - q), -inf for a full-batch release (q = 1); its result is still right.
warnings.filterwarnings("ignore", category=RuntimeWarning, module="opacus.accountants.analysis.prv")

# (noise multiplier, sample rate, steps): Opacus' accountant history format.
HistoryEntry = tuple[float, float, int]


def calibrate_noise_multiplier(
    target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """Smallest noise multiplier whose epsilon after `steps` steps is <= target_epsilon."""
    if math.isinf(target_epsilon):
        return 0.0
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
            epsilon_tolerance=0.005,
        )
    )


def calibrate_release_noise(
    history: list[HistoryEntry], target_epsilon: float, delta: float, accountant: str
) -> float:
    """Smallest noise multiplier (to 0.5 %) of one more full-batch Gaussian release (sample
    rate 1, one step, sensitivity 1) that keeps the epsilon of `history` plus the release at
    or below target_epsilon; inf when `history` alone reaches it, 0 without privacy."""
    if math.isinf(target_epsilon):
        return 0.0

    def epsilon_with(sigma: float) -> float:
        return epsilon_spent([*history, (sigma, 1.0, 1)], delta, accountant)

    if epsilon_spent(history, delta, accountant) >= target_epsilon:
        return math.inf
    low, high = 0.0, 1.0
    while epsilon_with(high) > target_epsilon:
        low, high = high, 2 * high
    while high - low > 0.005 * high:
        middle = (low + high) / 2
        low, high = (middle, high) if epsilon_with(middle) > target_epsilon else (low, middle)
    return high


def epsilon_spent(history: list[HistoryEntry], delta: float, accountant: str) -> float:
    """The accountant's epsilon after composing every entry of `history`."""
    if not history:
        return 0.0
    if any(sigma == 0 for sigma, _, steps in history if steps > 0):
        return math.inf
    engine = create_accountant(mechanism=accountant)
    engine.history = _merged(history)
    return float(engine.get_epsilon(delta=delta))


def _merged(history: list[HistoryEntry]) -> list[HistoryEntry]:
    """One entry per (noise multiplier, sample rate), steps summed.

    Composing n steps of one mechanism is exactly what an entry with n steps means, so this
    changes no epsilon; without it a ledger of one entry per round makes every epsilon cost
    grow with the round count (4.5 s at 80 rounds)."""
    steps: Counter[tuple[float, float]] = Counter()
    for sigma, rate, count in history:
        if count > 0:
            steps[float(sigma), float(rate)] += int(count)
    return [(sigma, rate, count) for (sigma, rate), count in steps.items()]
