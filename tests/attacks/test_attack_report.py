import numpy as np

from attacks.metrics import membership_metrics
from attacks.registry import MECHANISM_AUDIT, SYNTHETIC_ONLY
from attacks.report import to_markdown, verdict


def _entry(leaked: bool, membership: dict | None = None, findings: dict | None = None) -> dict:
    return {
        "skipped": "",
        "leaked": leaked,
        "summary": "numbers",
        "membership": membership or {},
        "findings": findings or {},
    }


def test_an_audit_bound_above_the_accountants_epsilon_is_called_a_violation():
    findings = {"violation": True, "lower_bound": 3.2, "accountant_epsilon": 1.0}

    text = verdict(MECHANISM_AUDIT, {"dp-audit": _entry(True, findings=findings)})

    assert text.startswith("PRIVACY VIOLATION")
    assert "3.200" in text


def test_copies_are_strong_leakage_even_when_membership_scores_are_at_chance():
    rng = np.random.default_rng(0)
    chance = membership_metrics(rng.normal(size=300), rng.normal(size=300))
    attacks = {
        "mia-distance": _entry(False, {"nearest synthetic": chance}),
        "copy-detection": _entry(True),
    }

    text = verdict(SYNTHETIC_ONLY, attacks)

    assert text.startswith("Strong leakage") and "copy-detection" in text


def test_the_markdown_marks_unresolved_low_fpr_numbers():
    rng = np.random.default_rng(0)
    metrics = membership_metrics(rng.normal(size=300), rng.normal(size=300))
    report = {
        "run_dir": "runs/x",
        "epsilon_per_site": {"site-0": 10.0},
        "evaluation": {"members": 300, "nonmembers": 300, "auxiliary": "aux"},
        "verdicts": {SYNTHETIC_ONLY: "text"},
        "attacks": {
            "mia-distance": {
                **_entry(False, {"nearest synthetic": metrics}),
                "threat_model": SYNTHETIC_ONLY,
                "description": "d",
                "member_direction": "higher = member",
                "seconds": 1.0,
                "figures": [],
            }
        },
    }

    markdown = to_markdown(report)

    assert "300 non-members cannot resolve FPR 0.001" in markdown
    assert "| mia-distance | nearest synthetic |" in markdown
