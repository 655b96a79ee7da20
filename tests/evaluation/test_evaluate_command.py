"""`privsynth evaluate` end to end on tiny run folders, and its user errors."""

import numpy as np
import pytest

from cli.main import main
from common.run_folder import RunFolder

FAST = ["--epochs", "1", "--max-train-images", "48", "--bootstrap", "50"]


def test_evaluate_writes_json_report_and_figures_for_a_multi_label_run(phantom_run, capsys):
    code = main(["evaluate", str(phantom_run), *FAST])

    assert code == 0
    result = RunFolder(phantom_run).read_evaluation()
    assert set(result["classification"]["models"]) == {"TRTR", "TSTR", "TRTR + synthetic"}
    assert set(result["distribution"]["per_class"]) == {
        "no finding",
        "opacity",
        "cardiomegaly",
        "effusion",
        "nodule",
    }
    assert result["images"]["synthetic"] == 40  # the run's synthetic.npz
    for figure in result["figures"].values():
        assert (phantom_run / figure).stat().st_size > 0
    report = RunFolder(phantom_run).evaluation_report.read_text()
    assert "## Summary" in report and "not Inception-FID" in report
    assert "](evaluation-roc.png)" in report
    assert "report:" in capsys.readouterr().out


def test_evaluate_reports_the_realism_detector_beside_its_real_vs_real_reference(phantom_run):
    main(["evaluate", str(phantom_run), *FAST])

    folder = RunFolder(phantom_run)
    realism = folder.read_evaluation()["realism"]
    for row in ("synthetic", "real_reference"):
        assert 0.0 <= realism[row]["auc"] <= 1.0
        assert realism[row]["auc_ci95"][0] <= realism[row]["auc"] <= realism[row]["auc_ci95"][1]
    assert "nodule" in realism["synthetic"]["per_class"]
    assert folder.evaluation_figure("realism").stat().st_size > 0
    assert "## Realism: a detector of synthetic against real images" in (
        folder.evaluation_report.read_text()
    )


def test_samples_per_class_generates_and_charts_tstr_against_n(bright_dark_run, tmp_path):
    cache = tmp_path / "cache"

    code = main(
        [
            "evaluate",
            str(bright_dark_run),
            *FAST,
            "--samples-per-class",
            "4,12",
            "--cache-dir",
            str(cache),
        ]
    )

    assert code == 0
    result = RunFolder(bright_dark_run).read_evaluation()
    assert [p["samples_per_class"] for p in result["samples_per_class_curve"]] == [4, 12]
    assert result["images"]["synthetic"] == 24
    assert "TSTR 4/class" in result["classification"]["models"]
    assert (bright_dark_run / result["figures"]["samples_per_class"]).exists()
    assert len(list(cache.glob("real-resnet18-*.pt"))) == 1


def test_a_second_evaluation_reuses_the_real_classifier(bright_dark_run):
    main(["evaluate", str(bright_dark_run), *FAST])

    main(["evaluate", str(bright_dark_run), *FAST])

    result = RunFolder(bright_dark_run).read_evaluation()
    assert result["real_classifier_cache"]["reused"] is True


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--classifier", "vgg11"], "valid choices: densenet121"),
        (["--samples-per-class", "50,x"], "--samples-per-class"),
        (["--samples-per-class", "0"], "--samples-per-class"),
        (["--epochs", "0"], "--epochs"),
        (["--tstr-repeats", "0"], "--tstr-repeats"),
        (["--tstr-repeats", "2"], "add --samples-per-class"),
    ],
)
def test_bad_options_are_one_line_errors(phantom_run, extra, fragment, capsys):
    code = main(["evaluate", str(phantom_run), *extra])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("privsynth: error: ") and fragment in err
    assert "Traceback" not in err


def test_a_folder_that_is_not_a_run_is_named(tmp_path, capsys):
    code = main(["evaluate", str(tmp_path / "nowhere")])

    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_a_run_without_generator_cannot_generate_samples(phantom_run, capsys):
    generator = RunFolder(phantom_run).generator_file
    generator.unlink()

    code = main(["evaluate", str(phantom_run), "--samples-per-class", "5"])

    assert code == 2
    assert generator.name in capsys.readouterr().err


def test_synthetic_images_of_another_size_are_refused(phantom_run, capsys):
    np.savez(
        RunFolder(phantom_run).synthetic_file,
        train_images=np.zeros((5, 16, 16), np.uint8),
        train_labels=np.zeros((5, 4), np.uint8),
    )

    code = main(["evaluate", str(phantom_run)])

    err = capsys.readouterr().err
    assert code == 2
    assert "16 px" in err and "32 px" in err


def _evaluate_generated(run, seed, *extra):
    """Evaluate 8 generated images per class with `seed`; (exit code, evaluation.json)."""
    code = main(
        ["evaluate", str(run), *FAST, "--samples-per-class", "8", "--seed", str(seed), *extra]
    )
    return code, RunFolder(run).read_evaluation()


def test_tstr_repeats_reports_every_draw_starting_with_the_evaluations_own(bright_dark_run, capsys):
    code, result = _evaluate_generated(bright_dark_run, 3, "--tstr-repeats", "3")

    assert code == 0
    repeats = result["tstr_repeats"]
    assert repeats["seeds"] == [3, 4, 5]
    assert (
        repeats["macro_auc"][0] == result["classification"]["models"]["TSTR"]["macro_auc"]["value"]
    )
    assert len(set(repeats["macro_auc"])) > 1  # new draws, not the same classifier again
    assert repeats["mean"] == pytest.approx(np.mean(repeats["macro_auc"]))
    assert "Over 3 draws" in RunFolder(bright_dark_run).evaluation_report.read_text()
    assert "over 3 draws" in capsys.readouterr().out


def test_a_draw_reproduces_the_evaluation_with_that_seed(bright_dark_run):
    _, with_seed_4 = _evaluate_generated(bright_dark_run, 4)

    _, result = _evaluate_generated(bright_dark_run, 3, "--tstr-repeats", "2")

    assert result["tstr_repeats"]["macro_auc"][1] == pytest.approx(
        with_seed_4["classification"]["models"]["TSTR"]["macro_auc"]["value"], abs=1e-9
    )
