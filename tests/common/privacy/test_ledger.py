import json
import multiprocessing
import time

import pytest

from common.errors import UserError
from common.privacy.accounting import SIZE_ESTIMATE, epsilon_spent
from common.privacy.ledger import PrivacyLedger
from common.run_folder import SiteFolder

SETTINGS = {"unit": "image", "delta": 1e-5, "accountant": "rdp"}


def open_ledger(path, **overrides):
    return PrivacyLedger.open(path, **{**SETTINGS, **overrides})


def calibrated(path, sigma=1.0, rate=0.01):
    ledger = open_ledger(path)
    with ledger.transaction():
        ledger.calibrate(noise_multiplier=sigma, sample_rate=rate)
    return ledger


def test_ledger_persists_and_composes_rounds(tmp_path):
    path = SiteFolder(tmp_path).ledger
    ledger = calibrated(path)
    with ledger.transaction():
        ledger.record(round_number=1, steps=500)

    reopened = open_ledger(path)
    with reopened.transaction():
        reopened.record(round_number=2, steps=500)

    assert reopened.steps == 1000
    assert reopened.epsilon() == pytest.approx(
        epsilon_spent([(1.0, 0.01, 1000)], delta=1e-5, accountant="rdp")
    )
    assert len(json.loads(path.read_text())["entries"]) == 2


def test_epsilon_after_predicts_without_recording(tmp_path):
    ledger = calibrated(SiteFolder(tmp_path).ledger)

    predicted = ledger.epsilon_after(1000)

    assert ledger.steps == 0
    assert predicted == pytest.approx(2.1013652716, abs=1e-6)


def test_the_size_estimate_is_recorded_as_a_mechanism_of_its_own(tmp_path):
    ledger = open_ledger(SiteFolder(tmp_path).ledger)

    with ledger.transaction():
        ledger.record_size_estimate(round_number=1, estimate=41.7)

    reopened = open_ledger(SiteFolder(tmp_path).ledger)
    assert reopened.unit_count_estimate == 41.7
    assert reopened.history() == [SIZE_ESTIMATE]
    assert reopened.entries[0].mechanism == "size-estimate"
    assert reopened.steps == 0


@pytest.mark.parametrize(
    "other", [{"delta": 1e-3}, {"unit": "patient"}, {"accountant": "prv"}], ids=str
)
def test_ledger_refuses_settings_other_than_its_own(tmp_path, other):
    path = SiteFolder(tmp_path).ledger
    calibrated(path)

    with pytest.raises(UserError, match=next(iter(other))):
        open_ledger(path, **other)


def test_a_change_outside_a_transaction_is_refused(tmp_path):
    ledger = calibrated(SiteFolder(tmp_path).ledger)

    with pytest.raises(RuntimeError, match="transaction"):
        ledger.record(round_number=1, steps=10)


def test_a_failed_transaction_writes_nothing(tmp_path):
    path = SiteFolder(tmp_path).ledger
    ledger = calibrated(path)

    with pytest.raises(ValueError), ledger.transaction():
        ledger.record(round_number=1, steps=10)
        raise ValueError("refused after recording")

    assert open_ledger(path).entries == []


def test_corrupt_ledger_is_not_silently_reset(tmp_path):
    path = SiteFolder(tmp_path).ledger
    path.write_text("{not json")

    with pytest.raises(UserError, match="ledger"):
        open_ledger(path)


def test_a_ledger_without_its_privacy_unit_is_unreadable(tmp_path):
    path = SiteFolder(tmp_path).ledger
    calibrated(path)
    raw = json.loads(path.read_text())
    del raw["unit"]
    path.write_text(json.dumps(raw))

    with pytest.raises(UserError, match="unreadable"):
        open_ledger(path)


def _spend_if_it_fits(path: str, max_epsilon: float, started) -> bool:
    """One site process: check the budget, pause (as training setup would), then record."""
    ledger = open_ledger(path)
    started.wait()
    with ledger.transaction():
        fits = ledger.epsilon_after(600) <= max_epsilon
        time.sleep(0.3)
        if fits:
            ledger.record(round_number=1, steps=600)
    return fits


def test_two_processes_cannot_both_spend_a_budget_that_fits_one(tmp_path):
    path = SiteFolder(tmp_path).ledger
    ledger = calibrated(path)
    one_round = ledger.epsilon_after(600)
    context = multiprocessing.get_context("spawn")
    started = context.Manager().Event()

    with context.Pool(2) as pool:
        pending = [
            pool.apply_async(_spend_if_it_fits, (str(path), one_round + 0.01, started))
            for _ in range(2)
        ]
        time.sleep(0.5)
        started.set()
        outcomes = [result.get(timeout=120) for result in pending]

    assert sorted(outcomes) == [False, True]
    reopened = open_ledger(path)
    assert reopened.steps == 600
    assert reopened.epsilon() <= one_round + 0.01


def test_two_processes_that_both_fit_keep_both_entries(tmp_path):
    path = SiteFolder(tmp_path).ledger
    calibrated(path)
    context = multiprocessing.get_context("spawn")
    started = context.Manager().Event()

    with context.Pool(2) as pool:
        pending = [
            pool.apply_async(_spend_if_it_fits, (str(path), 100.0, started)) for _ in range(2)
        ]
        time.sleep(0.5)
        started.set()
        outcomes = [result.get(timeout=120) for result in pending]

    assert outcomes == [True, True]
    assert open_ledger(path).steps == 1200
