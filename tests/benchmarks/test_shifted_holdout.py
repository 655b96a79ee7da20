"""benchmarks/shifted_holdout.py: copies of a run whose holdout is another population."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from common.run_data import load_run
from tests.helpers.datasets import write_shifted_holdout_npz
from tests.helpers.run_folders import write_shifted_holdout_run

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "shifted_holdout.py"


def test_only_the_holdout_changes_and_one_copy_forgets_the_untrained_share(tmp_path):
    data_file = write_shifted_holdout_npz(tmp_path / "data.npz", 0, train=60, val=20)
    write_shifted_holdout_run(tmp_path / "run", data_file, "independent", 1.0)

    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "run"), str(tmp_path / "out")]
        + ["--brightness", "-12"],
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0, done.stderr
    run = load_run(tmp_path / "run")
    shifted = load_run(tmp_path / "out" / "run")
    forgetting = load_run(tmp_path / "out" / "run-without-untrained")
    np.testing.assert_array_equal(shifted.members.images, run.members.images)
    np.testing.assert_array_equal(shifted.untrained.images, run.untrained.images)
    np.testing.assert_array_equal(shifted.synthetic.images, run.synthetic.images)
    darker = np.clip(run.holdout.images.astype(np.int64) - 12, 0, 255)
    np.testing.assert_array_equal(shifted.holdout.images, darker)
    assert forgetting.untrained is None
    np.testing.assert_array_equal(forgetting.holdout.images, darker)
