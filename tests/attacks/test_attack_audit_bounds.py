import math

import numpy as np
import pytest

from attacks.audit_bounds import (
    claim_testable,
    clopper_pearson_ceiling,
    clopper_pearson_epsilon,
    one_run_ceiling,
    one_run_epsilon,
    thresholds_ceiling,
    thresholds_epsilon,
    untestable_note,
)


def _canaries(m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(m) < 0.5


def test_perfectly_separated_canaries_give_a_large_lower_bound():
    included = _canaries(1000)
    scores = included.astype(float) + np.random.default_rng(1).normal(0, 0.01, 1000)

    assert one_run_epsilon(scores=scores, included=included)["epsilon"] > 4
    assert clopper_pearson_epsilon(scores=scores, included=included, delta=1e-5)["epsilon"] > 3


def test_scores_independent_of_inclusion_give_no_bound():
    included = _canaries(1000)
    scores = np.random.default_rng(2).normal(size=1000)

    assert one_run_epsilon(scores=scores, included=included)["epsilon"] == 0.0
    assert clopper_pearson_epsilon(scores=scores, included=included, delta=1e-5)["epsilon"] == 0.0


def test_the_one_run_bound_holds_for_a_mechanism_with_known_epsilon():
    # Randomized response with epsilon 1: each canary's bit is reported truthfully with
    # probability e / (1 + e). A valid lower bound stays below 1 (at 95%, nearly always).
    epsilon = 1.0
    bounds = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        included = rng.random(1000) < 0.5
        truthful = rng.random(1000) < np.exp(epsilon) / (1 + np.exp(epsilon))
        scores = np.where(truthful, included, ~included) + rng.normal(0, 0.01, 1000)
        bounds.append(one_run_epsilon(scores=scores, included=included)["epsilon"])

    assert max(bounds) <= epsilon
    assert np.mean(bounds) > 0.3  # and it is not vacuous


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_the_one_run_ceiling_is_every_guess_right_at_the_largest_guess_count():
    # 250 of 500 canaries in (the DP audit's default count), 97.5% as the audit uses: all 500
    # guesses right is rejected up to p^500 = level, level shared by 6 guess counts.
    included = np.arange(500) % 2 == 0

    ceiling = one_run_ceiling(included=included, confidence=0.975)

    assert ceiling == pytest.approx(_logit((0.025 / 6) ** (1 / 500)), abs=1e-9)
    assert ceiling == pytest.approx(4.508, abs=1e-3)


def test_the_clopper_pearson_ceiling_is_the_bound_of_perfectly_separated_scores():
    included = _canaries(500)

    ceiling = clopper_pearson_ceiling(included=included, delta=1e-5, confidence=0.975)

    perfect = included + np.random.default_rng(3).uniform(0, 0.5, 500)
    assert (
        ceiling
        == clopper_pearson_epsilon(scores=perfect, included=included, delta=1e-5, confidence=0.975)[
            "epsilon"
        ]
    )
    assert ceiling < one_run_ceiling(included=included, confidence=0.975)


def test_the_thresholds_ceiling_is_the_closed_form_of_a_perfect_threshold():
    # The release audit's default: 2 x 10^7 trials a side, 24 thresholds, 97.5%.
    level = 0.025 / (4 * 24)
    tpr_low = level ** (1 / 20_000_000)

    ceiling = thresholds_ceiling(
        positives=20_000_000, negatives=20_000_000, thresholds=24, delta=1e-5, confidence=0.975
    )

    assert ceiling == pytest.approx(math.log((tpr_low - 1e-5) / (1 - tpr_low)), abs=1e-9)
    assert ceiling == pytest.approx(14.70, abs=0.01)


def test_the_best_of_a_perfect_and_a_useless_threshold_is_the_ceiling():
    best = thresholds_epsilon(
        true_positives=np.array([1000, 600]),
        positives=1000,
        false_positives=np.array([0, 600]),
        negatives=1000,
        delta=1e-5,
    )

    ceiling = thresholds_ceiling(positives=1000, negatives=1000, thresholds=2, delta=1e-5)
    assert best == {"epsilon": pytest.approx(ceiling), "threshold_index": 0}


def test_a_claim_above_the_ceiling_is_called_untestable():
    assert claim_testable(ceiling=4.1, claimed=3.0)
    assert untestable_note(ceiling=4.1, claimed=3.0, remedy="more canaries") == ""

    note = untestable_note(ceiling=4.1, claimed=4.58, remedy="more canaries")

    assert not claim_testable(ceiling=4.1, claimed=4.58)
    assert note == (
        "the audit cannot test this claim: its ceiling 4.10 is below the claimed 4.580; "
        "more canaries"
    )
