import json

import pytest

from common.errors import UserError
from common.privacy.accounting import epsilon_spent
from common.privacy.ledger import PrivacyLedger


def test_ledger_persists_and_composes_rounds(tmp_path):
    path = tmp_path / "ledger.json"
    ledger = PrivacyLedger.open(path, 1e-5, "rdp")
    ledger.calibrate(1.0, 0.01)
    ledger.record(1, 500)

    reopened = PrivacyLedger.open(path, 1e-5, "rdp")
    reopened.record(2, 500)

    assert reopened.steps == 1000
    assert reopened.epsilon() == pytest.approx(epsilon_spent([(1.0, 0.01, 1000)], 1e-5, "rdp"))
    assert len(json.loads(path.read_text())["entries"]) == 2


def test_epsilon_after_predicts_without_recording(tmp_path):
    ledger = PrivacyLedger.open(tmp_path / "ledger.json", 1e-5, "rdp")
    ledger.calibrate(1.0, 0.01)

    predicted = ledger.epsilon_after(1000)

    assert ledger.steps == 0
    assert predicted == pytest.approx(2.1013652716, abs=1e-6)


def test_ledger_refuses_other_delta(tmp_path):
    path = tmp_path / "ledger.json"
    PrivacyLedger.open(path, 1e-5, "rdp").calibrate(1.0, 0.01)

    with pytest.raises(UserError, match="delta"):
        PrivacyLedger.open(path, 1e-3, "rdp")


def test_corrupt_ledger_is_not_silently_reset(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text("{not json")

    with pytest.raises(UserError, match="ledger"):
        PrivacyLedger.open(path, 1e-5, "rdp")
