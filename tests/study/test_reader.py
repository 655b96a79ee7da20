"""Reader study: the image set, answers kept as given, and the binomial test."""

import json

import numpy as np
import pytest

from common.errors import UserError
from study.reader import (
    binomial_p_value,
    create_study,
    next_image,
    open_study,
    record_answer,
    score,
)
from tests.helpers.run_folders import write_labelled_run


@pytest.fixture
def run_dir(tmp_path):
    write_labelled_run(tmp_path / "run", np.eye(4, dtype=np.uint8)[np.arange(40) % 4])
    return tmp_path / "run"


@pytest.mark.parametrize(
    "correct, total, expected",
    [(10, 20, 1.0), (20, 20, 2 * 0.5**20), (15, 20, 0.04138947), (0, 0, 1.0), (3, 4, 0.625)],
)
def test_binomial_p_value_matches_the_exact_two_sided_test(correct, total, expected):
    assert binomial_p_value(correct, total) == pytest.approx(expected, rel=1e-6)


def test_a_study_is_half_real_half_synthetic_and_hides_the_truth_from_file_names(run_dir):
    study = create_study(run_dir, images=10, seed=0)

    truths = [image.truth for image in study.images]
    assert truths.count("real") == truths.count("synthetic") == 5
    names = {path.name for path in (run_dir / "reader-study" / "images").iterdir()}
    assert names == {f"{image.id}.png" for image in study.images}
    assert not any("real" in name or "synth" in name for name in names)


def test_a_reader_resumes_where_they_stopped_and_double_submits_count_once(run_dir):
    study = create_study(run_dir, images=6, seed=0)
    first = next_image(study, "ann")
    record_answer(study, "ann", first.id, "real")
    record_answer(study, "ann", first.id, "synthetic")  # a double click

    reopened = open_study(run_dir)  # the server restarted
    second = next_image(reopened, "ann")

    assert second.id != first.id
    assert next_image(reopened, "bob") is not None
    assert score(reopened)["readers"]["ann"]["answered"] == 1


def test_scores_per_reader_and_pooled(run_dir):
    study = create_study(run_dir, images=10, seed=0)
    for image in study.images:
        record_answer(study, "perfect", image.id, image.truth)
        record_answer(study, "always-real", image.id, "real")

    result = score(study)

    assert result["readers"]["perfect"]["accuracy"] == 1.0
    assert result["readers"]["perfect"]["p_value"] == pytest.approx(2 * 0.5**10)
    assert result["readers"]["always-real"]["accuracy"] == 0.5
    assert result["readers"]["always-real"]["synthetic_detected"] == 0.0
    assert result["pooled"]["answered"] == 20
    assert json.loads((run_dir / "reader-study" / "scores.json").read_text()) == result


def test_answers_outside_the_study_are_rejected(run_dir):
    study = create_study(run_dir, images=4, seed=0)

    with pytest.raises(UserError, match="not part of this study"):
        record_answer(study, "ann", "0000", "real")
    with pytest.raises(UserError, match="answer must be one of"):
        record_answer(study, "ann", study.images[0].id, "maybe")
