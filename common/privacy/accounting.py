"""Privacy math: noise calibration and epsilon from Opacus' accountants. Stateless."""

import math
import warnings
from collections import Counter

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

# With few steps the best RDP order is the largest one tried; the bound is still valid
# (only looser), so the warning is noise for users.
warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")

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
