import numpy as np
import pytest

from attacks.audit_bounds import claim_testable
from attacks.context import AttackOptions
from attacks.dp_audit import attack, audit_site, bounds, is_violation
from client.training import DPSettings
from common.config import config_from_dict
from common.data.federation import plan_federation
from common.device import resolve_device
from common.privacy.accounting import calibrate_noise_multiplier, epsilon_spent
from common.privacy.ledger import PrivacyLedger
from common.run_folder import RunFolder
from tests.helpers.configs import PLANTED

DELTA = 1e-5
# A broken-mechanism audit that runs in seconds: 5 full-batch steps, 100 canaries (ceiling
# 2.45 at this seed), claim 1.
STEPS, CANARIES, CLAIM = 5, 100, 1.0


def _write_ledger(run_dir, noise_multiplier: float, steps: int) -> None:
    ledger = PrivacyLedger.open(
        RunFolder(run_dir).site(0).ledger, unit="image", delta=DELTA, accountant="rdp"
    )
    with ledger.transaction():
        ledger.calibrate(noise_multiplier=noise_multiplier, sample_rate=1.0)
        ledger.record(round_number=1, steps=steps)


def test_the_audit_detects_leakage_from_a_non_private_site(planted):
    # Non-private: no noise and no clip, every record in every batch.
    context = planted("independent", AttackOptions(audit_steps=10, audit_canaries=200))
    _write_ledger(context.run.run_dir, noise_multiplier=0.0, steps=10)

    result = attack(context)

    findings = result.findings
    assert findings["accountant_epsilon"] == float("inf")
    # A positive bound rejects "no leakage" at 95% confidence (seed 0: 2.06, ceiling 3.16).
    assert findings["lower_bound"] > 0
    assert result.leaked
    assert not findings["violation"]
    assert not findings["claim_testable"]
    assert "the audit cannot test this claim" in result.summary


def test_an_audit_is_reproducible_from_its_seed(planted):
    context = planted("independent")
    data, config = context.run.members, context.run.config
    dp = DPSettings(noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=0.5)

    first, again, other = (
        audit_site(data, config, dp=dp, steps=3, canary_count=20, seed=seed) for seed in (0, 0, 1)
    )

    np.testing.assert_array_equal(first["scores"], again["scores"])
    assert not np.array_equal(first["scores"], other["scores"])


def test_an_audit_told_to_use_the_cpu_is_the_default_audit(planted):
    context = planted("independent")
    data, config = context.run.members, context.run.config
    dp = DPSettings(noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=0.5)
    run = {"dp": dp, "steps": 2, "canary_count": 10, "seed": 0}

    default = audit_site(data, config, **run)
    on_cpu = audit_site(data, config, **run, device=resolve_device("cpu"))

    np.testing.assert_array_equal(on_cpu["scores"], default["scores"])


def test_a_lower_bound_above_the_accountants_epsilon_is_a_violation():
    assert is_violation(lower_bound=2.0, accountant_epsilon=1.0)
    assert not is_violation(lower_bound=0.9, accountant_epsilon=1.0)


def test_without_a_ledger_the_audit_says_where_it_looked(planted):
    context = planted("independent")

    result = attack(context)

    assert str(RunFolder(context.run.run_dir).site(0).ledger) in result.skipped


def test_the_audit_trains_no_more_steps_than_the_run_took(planted):
    context = planted("independent", AttackOptions(audit_steps=300, audit_canaries=20))
    _write_ledger(context.run.run_dir, noise_multiplier=2.0, steps=10)

    result = attack(context)

    assert result.findings["audit_steps"] == 10
    assert result.findings["accountant_epsilon"] > result.findings["lower_bound"]
    assert "ceiling" in result.summary


def _audit(dp: DPSettings, canaries: int = CANARIES) -> dict:
    """A site's DP-SGD audited with `dp` (the claimed settings, or broken ones)."""
    config = config_from_dict({"name": "audit"}, PLANTED)
    site = plan_federation(config).site_data(0)
    audit = audit_site(site, config, dp=dp, steps=STEPS, canary_count=canaries, seed=0)
    return bounds(audit, DELTA)


def _claimed_noise() -> tuple[float, float]:
    """(noise multiplier for CLAIM over STEPS full-batch steps, the accountant's epsilon)."""
    sigma = calibrate_noise_multiplier(
        target_epsilon=CLAIM, delta=DELTA, sample_rate=1.0, steps=STEPS, accountant="prv"
    )
    return sigma, epsilon_spent([(sigma, 1.0, STEPS)], delta=DELTA, accountant="prv")


def test_correct_dp_sgd_is_not_flagged():
    sigma, claimed = _claimed_noise()

    found = _audit(DPSettings(noise_multiplier=sigma, max_grad_norm=1.0, sample_rate=1.0))

    assert claim_testable(ceiling=found["ceiling"], claimed=claimed)
    assert not is_violation(found["lower_bound"], claimed)


@pytest.mark.parametrize(
    "breaking",
    [
        # The trainer gets a tenth of the ledger's noise. A quarter (true epsilon about 4.7)
        # stays below what 100 canaries over 5 steps can show: one-run bounds are loose.
        lambda sigma: DPSettings(noise_multiplier=sigma / 10, max_grad_norm=1.0, sample_rate=1.0),
        # Noise for a clip of 1 on gradients that are not clipped (canaries' norms are 1-24).
        lambda sigma: DPSettings(noise_multiplier=sigma / 1e4, max_grad_norm=1e4, sample_rate=1.0),
    ],
    ids=["noise divided by 10", "clipping off"],
)
def test_broken_dp_sgd_is_a_violation(breaking):
    sigma, claimed = _claimed_noise()

    found = _audit(breaking(sigma))

    assert claim_testable(ceiling=found["ceiling"], claimed=claimed)
    assert is_violation(found["lower_bound"], claimed)


def test_a_quarter_of_the_noise_is_a_violation_with_enough_canaries():
    # 1000 canaries raise the ceiling and the power enough to flag a true epsilon of about
    # 4.7 claimed as 1, which 100 canaries cannot.
    sigma, claimed = _claimed_noise()

    found = _audit(
        DPSettings(noise_multiplier=sigma / 4, max_grad_norm=1.0, sample_rate=1.0), canaries=1000
    )

    assert claim_testable(ceiling=found["ceiling"], claimed=claimed)
    assert is_violation(found["lower_bound"], claimed)
