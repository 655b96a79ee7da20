"""Verdicts only from attackers shown to work: positive controls (power) and negative controls
(population difference)."""

import dataclasses

import numpy as np
import pytest

from attacks.controls import PLANTED_AUC_FLOOR, copies_in_synthetic, membership_attack
from attacks.registry import ATTACKS, SYNTHETIC_ONLY, Attack
from attacks.report import membership_level, verdict
from attacks.suite import attack_entry, run_attacks
from common.device import CPU
from common.run_folder import RunFolder
from tests.helpers.configs import ATTACK_OPTIONS
from tests.helpers.run_folders import write_planted_run


def _verdict_of(attack: Attack, result) -> str:
    entry = attack_entry(attack, result, figures=[], seconds=0.0)
    return verdict(attack.threat_model, {attack.name: entry})


@pytest.mark.parametrize(
    "weakness, short_of",
    [
        # A schedule too short to learn what a patient looks like: AUC below the floor.
        ({"linkage_steps": 4}, "value"),
        # 4 held-out auxiliary patients: whatever their AUC, too few to verify on.
        ({"auxiliary_patients": 16}, "count"),
    ],
)
def test_a_linkage_attacker_too_weak_on_its_data_is_inconclusive(
    tmp_path, cache_dir, weakness, short_of
):
    write_planted_run(tmp_path / "run", "independent")
    options = dataclasses.replace(ATTACK_OPTIONS, **weakness)

    report = run_attacks(tmp_path / "run", ["patient-linkage"], options, cache_dir, device=CPU)

    entry = report["attacks"]["patient-linkage"]
    power = entry["power"]
    text = report["verdicts"][SYNTHETIC_ONLY]
    markdown = RunFolder(tmp_path / "run").attacks_report.read_text()
    assert power["value"] == entry["findings"]["verification_auc"]
    if short_of == "value":
        assert power["value"] < power["floor"] and power["count"] >= power["min_count"]
    else:
        assert power["count"] < power["min_count"]
    assert not power["adequate"]
    assert text.startswith("Inconclusive") and "too weak on this data" in text
    assert "linkage_steps" in text and "auxiliary patients" in text
    assert "No measurable leakage" not in text and "No measurable leakage" not in markdown


def _brightened(context, levels: int):
    images = np.clip(context.nonmembers.images.astype(np.int64) + levels, 0, 255)
    return dataclasses.replace(context.nonmembers, images=images.astype(np.uint8))


def test_a_signal_that_untrained_images_share_is_called_a_population_difference(planted):
    context = planted("independent")  # the synthetic set owes nothing to the members
    context.nonmembers = _brightened(context, 40)  # a holdout from another population
    attack = ATTACKS.get("mia-distance")

    result = attack.run(context)

    text = _verdict_of(attack, result)
    score, control = (
        result.membership["nearest synthetic"],
        result.negative_control["membership"]["nearest synthetic"],
    )
    assert score["auc"] > 0.9  # the attack "finds" members ...
    assert membership_level(control) == "strong"  # ... as well as images no site trained on
    assert text.startswith("Inconclusive, a population difference")
    assert "rather than membership" in text and "above it" in text
    assert "leakage:" not in text


def test_copies_of_members_stay_leakage_with_a_negative_control_at_chance(planted):
    context = planted("copies")
    attack = ATTACKS.get("mia-distance")

    result = attack.run(context)

    text = _verdict_of(attack, result)
    controls = result.negative_control["membership"].values()
    assert all(membership_level(control) == "none" for control in controls)
    assert text.startswith("Strong leakage")
    assert "population difference" not in text


def test_a_working_attack_finds_its_planted_copies(planted):
    context = planted("independent")

    result = ATTACKS.get("mia-distance").run(context)

    assert result.power["adequate"]
    assert result.power["value"] >= PLANTED_AUC_FLOOR
    assert result.power["count"] >= result.power["min_count"]


def test_an_attack_scoring_at_random_is_too_weak_and_its_silence_inconclusive(planted):
    context = planted("independent")
    rng = np.random.default_rng(0)

    def random_scores(queries):
        return {"random": rng.random(len(queries))}

    broken = Attack(
        "random-scores",
        SYNTHETIC_ONLY,
        "scores at random",
        "higher = member",
        lambda context: membership_attack(
            context,
            score=random_scores,
            plant=copies_in_synthetic(lambda added: random_scores),
            advice="a score that looks at the images",
        ),
    )

    result = broken.run(context)

    text = _verdict_of(broken, result)
    assert not result.power["adequate"]
    assert result.power["value"] < PLANTED_AUC_FLOOR
    assert text.startswith("Inconclusive: ") and "random-scores is inconclusive" in text
    assert "a score that looks at the images" in text
    assert "No measurable leakage" not in text
