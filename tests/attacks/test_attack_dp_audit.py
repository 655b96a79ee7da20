import json

import numpy as np

from attacks.context import AttackOptions
from attacks.dp_audit import attack, audit_site, is_violation


def _write_ledger(run_dir, noise_multiplier: float, steps: int) -> None:
    site = run_dir / "sites" / "site-0"
    site.mkdir(parents=True)
    ledger = {
        "delta": 1e-5,
        "accountant": "rdp",
        "noise_multiplier": noise_multiplier,
        "sample_rate": 1.0,
        "entries": [
            {"round": 1, "noise_multiplier": noise_multiplier, "sample_rate": 1.0, "steps": steps}
        ],
    }
    (site / "ledger.json").write_text(json.dumps(ledger))


def test_the_audit_detects_leakage_from_a_non_private_site(planted):
    # Deliberately non-private: no noise, every record in every batch and a high learning rate
    # (tests/attacks/conftest.py), so the discriminator fits the included canaries.
    context = planted("independent", AttackOptions(audit_steps=400, audit_canaries=200))
    _write_ledger(context.run.run_dir, noise_multiplier=0.0, steps=400)

    result = attack(context)

    findings = result.findings
    assert findings["accountant_epsilon"] == float("inf")
    # A positive bound rejects "no leakage" at 95% confidence. The audit is seeded: seed 0 gives
    # 1.54, and seeds 0-7 gave 0.60 to 1.54 (tests/attacks/conftest.py).
    assert findings["lower_bound"] > 0
    assert result.leaked
    assert not findings["violation"]


def test_an_audit_is_reproducible_from_its_seed(planted):
    context = planted("independent")
    data, config = context.run.members, context.run.config

    first, again, other = (audit_site(data, config, 1.0, 0.5, 20, 20, seed) for seed in (0, 0, 1))

    np.testing.assert_array_equal(first["scores"], again["scores"])
    assert not np.array_equal(first["scores"], other["scores"])


def test_a_lower_bound_above_the_accountants_epsilon_is_a_violation():
    assert is_violation(lower_bound=2.0, accountant_epsilon=1.0)
    assert not is_violation(lower_bound=0.9, accountant_epsilon=1.0)


def test_without_a_ledger_the_audit_says_where_it_looked(planted):
    result = attack(planted("independent"))

    assert "ledger.json" in result.skipped


def test_the_audit_trains_no_more_steps_than_the_run_took(planted):
    context = planted("independent", AttackOptions(audit_steps=300, audit_canaries=20))
    _write_ledger(context.run.run_dir, noise_multiplier=2.0, steps=10)

    result = attack(context)

    assert result.findings["audit_steps"] == 10
    assert result.findings["accountant_epsilon"] > result.findings["lower_bound"]
