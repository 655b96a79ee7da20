"""evaluation.md: the summary's verdicts follow the numbers in evaluation.json."""

import copy
import json

import pytest

from common.device import CPU
from evaluation.evaluate import EvaluationSettings, evaluate_run
from evaluation.report import report_markdown
from evaluation.training import TrainingSettings
from tests.helpers.run_folders import write_finished_run


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    run_dir = write_finished_run(
        tmp_path_factory.mktemp("report") / "run", ["data.phantom.num_patients=30"]
    )
    settings = EvaluationSettings(
        training=TrainingSettings(epochs=1), max_train_images=48, bootstrap_resamples=20
    )
    return evaluate_run(run_dir, settings, device=CPU)


def _summary(result: dict) -> str:
    text = report_markdown(result)
    return text[text.index("## Summary") : text.index("## Utility")]


@pytest.mark.parametrize(
    "gap, verdict",
    [(-0.03, "within the project's target"), (-0.2, "short of the project's target")],
)
def test_the_summary_judges_the_tstr_gap_against_the_target(result, gap, verdict):
    changed = copy.deepcopy(result)
    changed["classification"]["macro_auc_minus_TRTR"]["TSTR"] = {
        "value": gap,
        "ci95": [gap - 0.01, gap + 0.01],
    }

    assert verdict in _summary(changed)


@pytest.mark.parametrize(
    "coverage, reading",
    [(0.9, "no sign of mode collapse"), (0.6, "part of the variety"), (0.1, "mode collapse, or")],
)
def test_the_summary_reads_diversity_from_coverage(result, coverage, reading):
    changed = copy.deepcopy(result)
    changed["distribution"]["overall"]["coverage"] = coverage

    assert reading in _summary(changed)


def test_the_report_is_written_from_the_json_alone(result):
    reloaded = json.loads(json.dumps(result))

    text = report_markdown(reloaded)

    for figure in result["figures"].values():
        assert f"]({figure})" in text
    assert "| TSTR |" in text and "| real training vs real holdout |" in text
