import numpy as np
import pytest

from attacks import controls
from attacks.dp_bound import above_bound
from attacks.metrics import membership_metrics
from attacks.registry import MECHANISM_AUDIT, SYNTHETIC_ONLY
from attacks.report import LEAK, POPULATION, attack_status, membership_level, to_markdown, verdict


def _entry(
    leaked: bool,
    membership: dict | None = None,
    findings: dict | None = None,
    power: float | None = None,
) -> dict:
    """An attack's report entry; power: its positive control's value (floor 0.9)."""
    return {
        "skipped": "",
        "leaked": leaked,
        "summary": "numbers",
        "membership": membership or {},
        "findings": findings or {},
        "power": {}
        if power is None
        else controls.power(control="planted", value=power, floor=0.9, count=50, advice="more"),
        "negative_control": {},
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


def test_no_measurable_leakage_only_when_every_attack_found_its_positive_control():
    silent = {"copy-detection": _entry(False, power=0.95), "patient-linkage": _entry(False)}

    partly = verdict(SYNTHETIC_ONLY, {**silent, "patient-linkage": _entry(False, power=0.55)})
    fully = verdict(SYNTHETIC_ONLY, {**silent, "patient-linkage": _entry(False, power=0.97)})
    unrecorded = verdict(SYNTHETIC_ONLY, silent)

    assert partly.startswith("Inconclusive: ")
    assert "shown to work (copy-detection) found nothing" in partly
    assert "patient-linkage is inconclusive, the attacker is too weak on this data" in partly
    assert "0.55 against a floor of 0.9" in partly and "stronger with more" in partly
    assert fully.startswith("No measurable leakage")
    assert unrecorded.startswith("Inconclusive: ") and "no positive control on record" in unrecorded


def test_a_leak_found_by_a_weak_attacker_is_still_a_leak():
    text = verdict(SYNTHETIC_ONLY, {"copy-detection": _entry(True, power=0.5)})

    assert text.startswith("Strong leakage")
    assert "copy-detection is inconclusive" not in text


def _report(entry: dict) -> dict:
    """A report around one mia-distance entry."""
    return {
        "run_dir": "runs/x",
        "epsilon_per_site": {"site-0": 10.0},
        "evaluation": {"members": 300, "nonmembers": 300, "auxiliary": "aux"},
        "verdicts": {SYNTHETIC_ONLY: "text"},
        "attacks": {
            "mia-distance": {
                **entry,
                "threat_model": SYNTHETIC_ONLY,
                "description": "d",
                "member_direction": "higher = member",
                "seconds": 1.0,
                "figures": [],
            }
        },
    }


def test_the_markdown_marks_unresolved_low_fpr_numbers():
    rng = np.random.default_rng(0)
    metrics = membership_metrics(rng.normal(size=300), rng.normal(size=300))

    markdown = to_markdown(_report(_entry(False, {"nearest synthetic": metrics})))

    assert "300 non-members cannot resolve FPR 0.001" in markdown
    assert "| mia-distance | nearest synthetic |" in markdown


def test_the_markdown_lists_each_attacks_controls_and_what_it_supports():
    rng = np.random.default_rng(0)
    metrics = membership_metrics(rng.normal(size=300), rng.normal(size=300))
    control = {"control": "other images", "membership": {"nearest synthetic": metrics}}
    entry = {
        **_entry(False, {"nearest synthetic": metrics}, power=0.6),
        "negative_control": control,
    }

    markdown = to_markdown(_report(entry))

    row = f"| mia-distance | inconclusive | 0.6 | 0.9 | no | nearest synthetic {metrics['auc']:.3f}"
    assert "## Controls" in markdown and row in markdown
    assert "- positive control: planted: 0.6 (floor 0.9, not met); stronger with more" in markdown
    assert "- negative control: other images" in markdown


def _above_bound_entry() -> dict:
    """A membership score at AUC ~0.84 with TPR at 1% FPR above what epsilon 1 allows."""
    rng = np.random.default_rng(0)
    metrics = membership_metrics(rng.normal(1.4, 1, 1000), rng.normal(0, 1, 1000))
    bound = {
        "epsilon": 1.0,
        "tpr_bound": {"0.01": {"epsilon_delta": 0.0272, "accountant": 0.0199}},
    }
    membership = {"calibrated": metrics}
    return {**_entry(True, membership), "above_dp_bound": above_bound(membership, bound)}


@pytest.mark.parametrize(
    "audit, pointer",
    [
        (None, "no audit has run on this run yet; run `privsynth attack RUN_DIR --only dp-audit`"),
        (
            {"violation": True, "claim_testable": True},
            "dp-audit found the mechanism leaks (numbers)",
        ),
        (
            {"violation": False, "claim_testable": True},
            "dp-audit found no violation (numbers), which leaves a population difference",
        ),
    ],
)
def test_a_tpr_above_the_dp_bound_points_to_the_audit(audit, pointer):
    entry = _above_bound_entry()
    audits = {} if audit is None else {"dp-audit": _entry(audit["violation"], findings=audit)}

    text = verdict(
        SYNTHETIC_ONLY, {"mia-distance": entry}, audits=audits, bound={"audits": ["dp-audit"]}
    )

    assert entry["above_dp_bound"][0]["tpr_ci_low"] > 0.0199
    assert text.startswith("Inconclusive, above what the accountant's epsilon allows")
    assert (
        "mia-distance is above what epsilon 1 allows for membership: the members and non-members "
        f"differ as populations, or the mechanism leaks; the audit decides ({pointer}"
    ) in text


@pytest.mark.parametrize("members_stand_out, status", [(False, POPULATION), (True, LEAK)])
def test_a_signal_is_membership_only_if_the_members_stand_out_from_their_own_population(
    members_stand_out, status
):
    rng = np.random.default_rng(1)
    members = rng.normal(0.3 if members_stand_out else 0.0, 1, 600)
    untrained = rng.normal(0.0, 1, 600)  # the training population, no site trained on it
    holdout = rng.normal(-0.3, 1, 600)  # another population: it scores lower
    control = {
        "control": "untrained images",
        "training_population": True,
        # Against the holdout the control's own signal stays below the line (AUC CI from 0.5).
        "membership": {"score": membership_metrics(untrained[:60], holdout[:60])},
        "members_against_control": {"score": membership_metrics(members, untrained)},
    }
    entry = {
        **_entry(True, {"score": membership_metrics(members, holdout)}),
        "negative_control": control,
    }

    text = verdict(SYNTHETIC_ONLY, {"mia-distance": entry})

    assert membership_level(entry["membership"]["score"]) != "none"
    assert membership_level(control["membership"]["score"]) == "none"
    assert attack_status(entry) == status
    if status == POPULATION:
        assert text.startswith("Inconclusive, a population difference")
        assert "against the control, at chance" in text
    else:
        assert text.startswith("Weak but measurable leakage") or text.startswith("Strong leakage")
