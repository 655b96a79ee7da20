import numpy as np

from attacks.metrics import membership_metrics
from attacks.report import membership_level


def _ci_width(metrics: dict) -> float:
    return metrics["auc_ci"][1] - metrics["auc_ci"][0]


def test_perfectly_separated_scores_give_auc_one_and_full_tpr():
    metrics = membership_metrics(np.arange(100) + 1000.0, np.arange(100, dtype=float))

    assert metrics["auc"] == 1.0
    assert metrics["tpr_at_fpr"]["0.01"]["tpr"] == 1.0
    assert metrics["balanced_accuracy"] == 1.0
    assert membership_level(metrics) == "strong"


def test_scores_from_one_distribution_are_at_chance():
    rng = np.random.default_rng(0)

    metrics = membership_metrics(rng.normal(size=2000), rng.normal(size=2000))

    assert abs(metrics["auc"] - 0.5) < 0.04
    assert metrics["auc_ci"][0] < 0.5 < metrics["auc_ci"][1]
    assert metrics["tpr_at_fpr"]["0.01"]["tpr"] < 0.05
    assert membership_level(metrics) == "none"


def test_too_few_nonmembers_to_resolve_a_low_fpr_say_so():
    rng = np.random.default_rng(0)

    metrics = membership_metrics(rng.normal(size=500), rng.normal(size=500))

    assert metrics["tpr_at_fpr"]["0.01"]["resolved"]
    assert not metrics["tpr_at_fpr"]["0.001"]["resolved"]
    assert "500 non-members" in metrics["tpr_at_fpr"]["0.001"]["note"]


def test_a_few_certain_members_count_as_leakage_at_low_fpr():
    rng = np.random.default_rng(1)
    members = rng.normal(size=2000)
    members[:100] = 100.0  # 5% of members identified with certainty

    metrics = membership_metrics(members, rng.normal(size=2000))

    assert metrics["tpr_at_fpr"]["0.001"]["tpr"] >= 0.05
    assert membership_level(metrics) != "none"


def test_the_bootstrap_over_patients_widens_the_ci_when_few_patients_carry_the_result():
    rng = np.random.default_rng(3)
    # 30 patients a side, 4 images each; the images of a patient share one score.
    members = np.repeat(rng.normal(size=30), 4)
    nonmembers = np.repeat(rng.normal(size=30), 4)
    patients = np.repeat(np.arange(30), 4)

    by_image = membership_metrics(members, nonmembers)
    by_patient = membership_metrics(members, nonmembers, 0, patients, patients + 100)

    assert _ci_width(by_patient) > 1.5 * _ci_width(by_image)
    assert by_patient["auc"] == by_image["auc"]
