import math

import pytest

from common.privacy.accounting import (
    SIZE_ESTIMATE,
    calibrate_noise_multiplier,
    calibrate_release_noise,
    epsilon_spent,
)


def test_rdp_epsilon_is_pinned_for_fixed_sigma_rate_and_steps():
    epsilon = epsilon_spent([(1.0, 0.01, 1000)], delta=1e-5, accountant="rdp")

    assert epsilon == pytest.approx(2.1013652716, abs=1e-6)


def test_prv_epsilon_is_pinned_and_tighter_than_rdp():
    epsilon = epsilon_spent([(1.0, 0.01, 1000)], delta=1e-5, accountant="prv")

    assert epsilon == pytest.approx(1.8384, abs=1e-3)


def test_composition_over_rounds_equals_one_long_run():
    split = epsilon_spent([(1.0, 0.01, 500), (1.0, 0.01, 500)], delta=1e-5, accountant="rdp")

    assert split == pytest.approx(epsilon_spent([(1.0, 0.01, 1000)], delta=1e-5, accountant="rdp"))


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_a_ledger_of_many_rounds_costs_what_one_entry_of_all_its_steps_costs(accountant):
    rounds = [(1.0, 0.01, 10)] * 100

    epsilon = epsilon_spent(rounds, delta=1e-5, accountant=accountant)

    assert epsilon == pytest.approx(
        epsilon_spent([(1.0, 0.01, 1000)], delta=1e-5, accountant=accountant)
    )


def test_rounds_with_different_noise_compose_as_different_mechanisms():
    mixed = epsilon_spent([(1.0, 0.01, 500), (2.0, 0.01, 500)], delta=1e-5, accountant="rdp")

    assert epsilon_spent([(2.0, 0.01, 1000)], delta=1e-5, accountant="rdp") < mixed
    assert mixed < epsilon_spent([(1.0, 0.01, 1000)], delta=1e-5, accountant="rdp")


def test_calibrated_noise_meets_the_target_from_below():
    sigma = calibrate_noise_multiplier(
        target_epsilon=10.0, delta=1e-5, sample_rate=0.0376, steps=1800, accountant="rdp"
    )

    epsilon = epsilon_spent([(sigma, 0.0376, 1800)], delta=1e-5, accountant="rdp")
    assert sigma == pytest.approx(1.0992, abs=1e-3)
    assert 9.9 < epsilon <= 10.0


def test_no_steps_spend_nothing_and_no_noise_spends_everything():
    assert epsilon_spent([], delta=1e-5, accountant="rdp") == 0.0
    assert math.isinf(epsilon_spent([(0.0, 0.1, 10)], delta=1e-5, accountant="rdp"))
    no_privacy = calibrate_noise_multiplier(
        target_epsilon=math.inf, delta=1e-5, sample_rate=0.1, steps=10, accountant="rdp"
    )
    assert no_privacy == 0.0


def test_release_noise_is_pinned_for_epsilon_one_on_a_fresh_ledger():
    sigma = calibrate_release_noise(history=[], target_epsilon=1.0, delta=1e-5, accountant="rdp")

    assert sigma == pytest.approx(4.0469, abs=0.02)
    assert epsilon_spent([(sigma, 1.0, 1)], delta=1e-5, accountant="rdp") <= 1.0


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_release_noise_fits_what_the_ledger_already_spent_within_the_target(accountant):
    history = [(10.5, 0.04, 2000)]

    sigma = calibrate_release_noise(
        history=history, target_epsilon=1.0, delta=1e-5, accountant=accountant
    )

    fresh = calibrate_release_noise(
        history=[], target_epsilon=1.0, delta=1e-5, accountant=accountant
    )
    assert sigma > fresh
    total = epsilon_spent([*history, (sigma, 1.0, 1)], delta=1e-5, accountant=accountant)
    assert 0.97 <= total <= 1.0


def test_no_release_fits_a_spent_budget():
    spent = [(0.5, 0.5, 1000)]
    assert math.isinf(
        calibrate_release_noise(history=spent, target_epsilon=1.0, delta=1e-5, accountant="rdp")
    )
    assert (
        calibrate_release_noise(history=[], target_epsilon=math.inf, delta=1e-5, accountant="rdp")
        == 0.0
    )


def test_calibration_arguments_are_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        calibrate_noise_multiplier(10.0, 1e-5, 0.0376, 1800, "rdp")


def test_dp_sgd_noise_leaves_room_for_what_the_ledger_already_holds():
    alone = calibrate_noise_multiplier(
        target_epsilon=2.0, delta=1e-5, sample_rate=0.05, steps=200, accountant="rdp"
    )

    after_estimate = calibrate_noise_multiplier(
        target_epsilon=2.0,
        delta=1e-5,
        sample_rate=0.05,
        steps=200,
        accountant="rdp",
        history=[SIZE_ESTIMATE],
    )

    assert after_estimate > alone
    total = epsilon_spent(
        [SIZE_ESTIMATE, (after_estimate, 0.05, 200)], delta=1e-5, accountant="rdp"
    )
    assert 1.97 <= total <= 2.0


def test_the_size_estimate_costs_little_of_a_small_budget():
    # Pinned: one Gaussian count with sigma 20 under RDP at delta 1e-5.
    assert epsilon_spent([SIZE_ESTIMATE], delta=1e-5, accountant="rdp") == pytest.approx(
        0.1816, abs=1e-3
    )
