"""`privsynth attack`: the report on disk, selective runs, and user errors."""

import json

import pytest

from attacks.context import AttackOptions
from attacks.registry import ATTACKS
from attacks.suite import run_attacks
from cli.main import main
from common.device import CPU
from common.run_folder import RunFolder
from tests.helpers.configs import ATTACK_OPTIONS
from tests.helpers.run_folders import write_planted_run


def test_every_attack_is_registered_with_a_threat_model_and_score_direction():
    assert ATTACKS.names() == [
        "copy-detection",
        "dp-audit",
        "mia-discriminator",
        "mia-distance",
        "mia-domias",
        "mia-epsilon-ball",
        "mia-reconstruction",
        "patient-linkage",
        "release-audit",
    ]
    for name in ATTACKS:
        assert ATTACKS.get(name).threat_model and ATTACKS.get(name).member_direction


def test_the_report_flags_copies_with_numbers_figures_and_verdicts(tmp_path, cache_dir):
    write_planted_run(tmp_path / "run", "copies")

    report = run_attacks(
        tmp_path / "run", ["mia-distance", "copy-detection"], ATTACK_OPTIONS, cache_dir, device=CPU
    )

    run = RunFolder(tmp_path / "run")
    saved = run.read_attacks()
    markdown = run.attacks_report.read_text()
    assert set(saved["attacks"]) == {"mia-distance", "copy-detection"}
    assert "roc" not in json.dumps(saved["attacks"]["mia-distance"]["membership"])
    assert saved["attacks"]["mia-distance"]["leaked"]
    assert "leakage" in report["verdicts"]["synthetic data only"]
    assert "| mia-distance | nearest synthetic | 1.000" in markdown
    for entry in saved["attacks"].values():
        for figure in entry["figures"]:
            assert (tmp_path / "run" / figure).exists()


def test_skipped_attacks_are_reported_with_their_reason(tmp_path, cache_dir):
    write_planted_run(tmp_path / "run", "independent")

    report = run_attacks(
        tmp_path / "run", ["mia-discriminator"], AttackOptions(), cache_dir, device=CPU
    )

    state = RunFolder(tmp_path / "run").site(0).training_state.name
    assert state in report["attacks"]["mia-discriminator"]["skipped"]
    assert "No attack" in report["verdicts"]["a site's discriminator"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["attack", "/no/such/run"], "does not exist"),
        (["attack", "RUN", "--only", "mia-distance,bogus"], "valid choices: copy-detection"),
        (["attack", "RUN", "--members", "-1"], "--members must be >= 0"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, capsys, argv, fragment):
    write_planted_run(tmp_path / "run", "independent")
    argv = [str(tmp_path / "run") if arg == "RUN" else arg for arg in argv]

    code = main(argv)

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("privsynth: error: ") and fragment in err
    assert "Traceback" not in err


def test_a_run_folder_without_synthetic_images_names_the_file(tmp_path, capsys):
    write_planted_run(tmp_path / "run", "independent")
    synthetic = RunFolder(tmp_path / "run").synthetic_file
    synthetic.unlink()

    code = main(["attack", str(tmp_path / "run")])

    assert code == 2
    assert synthetic.name in capsys.readouterr().err


def test_running_a_few_attacks_keeps_the_others_of_an_earlier_report(tmp_path, cache_dir):
    write_planted_run(tmp_path / "run", "copies")
    run_attacks(tmp_path / "run", ["mia-distance"], ATTACK_OPTIONS, cache_dir, device=CPU)

    report = run_attacks(
        tmp_path / "run", ["mia-epsilon-ball"], ATTACK_OPTIONS, cache_dir, device=CPU
    )

    assert list(report["attacks"]) == ["mia-distance", "mia-epsilon-ball"]
    assert set(RunFolder(tmp_path / "run").read_attacks()["attacks"]) == {
        "mia-distance",
        "mia-epsilon-ball",
    }
