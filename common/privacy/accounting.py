"""Privacy math: noise calibration and epsilon from Opacus' accountants. Stateless."""

import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence

from opacus.accountants import create_accountant

# With few steps (or much noise) the best RDP order is the largest (smallest) one tried; the
# bound is still valid, only looser, so the warning is noise for users.
warnings.filterwarnings("ignore", message="Optimal order is the (largest|smallest) alpha")
# PRV takes log(1 - q), -inf for a full-batch release (q = 1); its result is still right.
warnings.filterwarnings("ignore", category=RuntimeWarning, module="opacus.accountants.analysis.prv")

# (noise multiplier, sample rate, steps): Opacus' accountant history format.
HistoryEntry = tuple[float, float, int]

# Accountants a site may spend with. GDP is left out on purpose: its CLT approximation
# understates epsilon for DP-SGD at the sample rates and step counts used here.
ACCOUNTANTS = ("rdp", "prv")
# Slack for the accountant's floating point when comparing an epsilon against a maximum.
EPSILON_SLACK = 1e-9
# The relative tolerance of the calibrated noise multipliers.
CALIBRATION_TOLERANCE = 0.001
# A DP-SGD site's sample rate divides by its size, which must not leave the site exactly: it
# estimates its unit count once with the Gaussian mechanism (sensitivity 1 unit) at this noise
# multiplier, recorded in its ledger. A standard deviation of 20 units is a small error on the
# sample rate of any site worth training on, and costs little in RDP (order alpha / 800).
SIZE_NOISE_MULTIPLIER = 20.0
SIZE_ESTIMATE: HistoryEntry = (SIZE_NOISE_MULTIPLIER, 1.0, 1)


def calibrate_noise_multiplier(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str,
    history: Sequence[HistoryEntry] = (),
) -> float:
    """Smallest noise multiplier (to 0.1 %) whose `steps` DP-SGD steps at `sample_rate`,
    composed with what `history` already spent, keep epsilon <= target_epsilon; inf when
    `history` alone reaches it, 0 without privacy."""
    return _smallest_noise(
        lambda sigma: epsilon_spent(
            [*history, (sigma, sample_rate, steps)], delta=delta, accountant=accountant
        ),
        target_epsilon=target_epsilon,
        spent=epsilon_spent(list(history), delta=delta, accountant=accountant),
    )


def calibrate_release_noise(
    *,
    history: Sequence[HistoryEntry],
    target_epsilon: float,
    delta: float,
    accountant: str,
) -> float:
    """Smallest noise multiplier (to 0.1 %) of one more full-batch Gaussian release (sample
    rate 1, one step, sensitivity 1) that keeps the epsilon of `history` plus the release at
    or below target_epsilon; inf when `history` alone reaches it, 0 without privacy."""
    return calibrate_noise_multiplier(
        target_epsilon=target_epsilon,
        delta=delta,
        sample_rate=1.0,
        steps=1,
        accountant=accountant,
        history=history,
    )


def _smallest_noise(
    epsilon_with: Callable[[float], float], *, target_epsilon: float, spent: float
) -> float:
    """Bisection on sigma: epsilon_with is decreasing in sigma."""
    if math.isinf(target_epsilon):
        return 0.0
    if spent >= target_epsilon:
        return math.inf
    low, high = 0.0, 1.0
    while epsilon_with(high) > target_epsilon:
        low, high = high, 2 * high
    while high - low > CALIBRATION_TOLERANCE * high:
        middle = (low + high) / 2
        low, high = (middle, high) if epsilon_with(middle) > target_epsilon else (low, middle)
    return high


def epsilon_spent(history: Sequence[HistoryEntry], *, delta: float, accountant: str) -> float:
    """The accountant's epsilon after composing every entry of `history`."""
    if not history:
        return 0.0
    if any(sigma == 0 for sigma, _, steps in history if steps > 0):
        return math.inf
    engine = create_accountant(mechanism=accountant)
    engine.history = _merged(history)
    return float(engine.get_epsilon(delta=delta))


def _merged(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """One entry per (noise multiplier, sample rate), steps summed.

    Composing n steps of one mechanism is exactly what an entry with n steps means, so this
    changes no epsilon; without it a ledger of one entry per round makes every epsilon cost
    grow with the round count (4.5 s at 80 rounds)."""
    steps: Counter[tuple[float, float]] = Counter()
    for sigma, rate, count in history:
        if count > 0:
            steps[float(sigma), float(rate)] += int(count)
    return [(sigma, rate, count) for (sigma, rate), count in steps.items()]
