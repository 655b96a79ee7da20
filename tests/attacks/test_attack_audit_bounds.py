import numpy as np

from attacks.audit_bounds import clopper_pearson_epsilon, one_run_epsilon


def _canaries(m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(m) < 0.5


def test_perfectly_separated_canaries_give_a_large_lower_bound():
    included = _canaries(1000)
    scores = included.astype(float) + np.random.default_rng(1).normal(0, 0.01, 1000)

    assert one_run_epsilon(scores, included)["epsilon"] > 4
    assert clopper_pearson_epsilon(scores, included, delta=1e-5)["epsilon"] > 3


def test_scores_independent_of_inclusion_give_no_bound():
    included = _canaries(1000)
    scores = np.random.default_rng(2).normal(size=1000)

    assert one_run_epsilon(scores, included)["epsilon"] == 0.0
    assert clopper_pearson_epsilon(scores, included, delta=1e-5)["epsilon"] == 0.0


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
        bounds.append(one_run_epsilon(scores, included)["epsilon"])

    assert max(bounds) <= epsilon
    assert np.mean(bounds) > 0.3  # and it is not vacuous
