"""A holdout from another population is not membership: the sites' untrained share as the
negative control, and membership signal checked against what the accountant's epsilon allows.

The data: phantom chest films as the sites' training population, and as the holdout films of
other patients made 12 grey levels brighter (another scanner). The synthetic set is either
fresh films of the training population (a generator that learned the population and no one in
it) or the members themselves (a memorising generator).
"""

import math

import pytest

from attacks.registry import SYNTHETIC_ONLY
from attacks.report import ABOVE_BOUND, LEAK, POPULATION, attack_status, membership_level
from attacks.suite import run_attacks
from common.device import CPU
from common.run_folder import RunFolder
from tests.helpers.configs import ATTACK_OPTIONS
from tests.helpers.datasets import write_shifted_holdout_npz
from tests.helpers.run_folders import write_shifted_holdout_run

BRIGHTER = 12
WORDS = (
    "above what epsilon 1 allows for membership: the members and non-members differ as "
    "populations, or the mechanism leaks; the audit decides"
)


@pytest.fixture(scope="module")
def shifted_file(tmp_path_factory):
    return write_shifted_holdout_npz(tmp_path_factory.mktemp("data") / "shifted.npz", BRIGHTER)


def attacked(run_dir, data_file, cache_dir, synthetic, epsilon, overrides=()):
    write_shifted_holdout_run(run_dir, data_file, synthetic, epsilon, list(overrides))
    return run_attacks(run_dir, ["mia-distance"], ATTACK_OPTIONS, cache_dir, device=CPU)


def test_a_shifted_holdout_at_epsilon_1_is_a_population_difference_not_leakage(
    tmp_path, shifted_file, cache_dir
):
    report = attacked(tmp_path / "run", shifted_file, cache_dir, "independent", 1.0)

    entry = report["attacks"]["mia-distance"]
    text = report["verdicts"][SYNTHETIC_ONLY]
    # The attack tells the members from the brighter holdout ...
    assert any(membership_level(m) != "none" for m in entry["membership"].values())
    # ... and so does the sites' own untrained share, which no mechanism saw.
    assert "the sites kept untrained" in entry["negative_control"]["control"]
    assert entry["negative_control"]["training_population"]
    assert attack_status(entry) == POPULATION
    assert text.startswith("Inconclusive, a population difference")
    assert "leakage:" not in text


def test_without_an_untrained_share_the_shift_is_above_what_epsilon_allows(
    tmp_path, shifted_file, cache_dir
):
    report = attacked(
        tmp_path / "run",
        shifted_file,
        cache_dir,
        "independent",
        1.0,
        ["data.untrained_fraction=0"],
    )

    entry = report["attacks"]["mia-distance"]
    text = report["verdicts"][SYNTHETIC_ONLY]
    markdown = RunFolder(tmp_path / "run").attacks_report.read_text()
    assert not entry["negative_control"]["training_population"]
    assert attack_status(entry) == ABOVE_BOUND
    assert WORDS in text and "privsynth attack RUN_DIR --only release-audit" in text
    assert "cannot see a population difference" in text
    assert "leakage:" not in text
    assert "## Against the accountant's epsilon" in markdown and "| yes |" in markdown


def test_a_tpr_above_the_dp_bound_is_flagged_against_the_accountants_curve(
    tmp_path, shifted_file, cache_dir
):
    # Copies of the members released by sites whose ledgers say epsilon 1: no DP mechanism
    # at epsilon 1 could have made them.
    report = attacked(tmp_path / "run", shifted_file, cache_dir, "copies", 1.0)

    bound = report["dp_bound"]
    at_1_percent = bound["tpr_bound"]["0.01"]
    entry = report["attacks"]["mia-distance"]
    # e^1 * 1% + 1e-5, and lower on the accountant's curve of one Gaussian release.
    assert at_1_percent["epsilon_delta"] == pytest.approx(math.e * 0.01 + 1e-5, rel=1e-3)
    assert at_1_percent["accountant"] < at_1_percent["epsilon_delta"]
    assert "prv accountant's privacy profile" in bound["source"]
    flagged = {(f["score"], f["fpr"]) for f in entry["above_dp_bound"]}
    assert ("nearest synthetic", "0.01") in flagged
    assert attack_status(entry) == ABOVE_BOUND
    assert WORDS in report["verdicts"][SYNTHETIC_ONLY]


def test_a_memorising_non_private_run_is_still_strong_leakage(tmp_path, shifted_file, cache_dir):
    report = attacked(tmp_path / "run", shifted_file, cache_dir, "copies", math.inf)

    entry = report["attacks"]["mia-distance"]
    text = report["verdicts"][SYNTHETIC_ONLY]
    assert report["dp_bound"] is None and entry["above_dp_bound"] == []
    assert attack_status(entry) == LEAK
    assert text.startswith("Strong leakage")
    assert "population difference" not in text and "the audit decides" not in text
