"""benchmarks/membership_verdicts.py: attacked runs' membership verdicts as one result file."""

import json
import math
import subprocess
import sys
from pathlib import Path

from attacks.suite import run_attacks
from common.device import CPU
from tests.helpers.configs import ATTACK_OPTIONS
from tests.helpers.datasets import write_shifted_holdout_npz
from tests.helpers.run_folders import write_shifted_holdout_run

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "membership_verdicts.py"


def test_each_score_gets_its_bound_control_status_and_verdict(tmp_path):
    data_file = write_shifted_holdout_npz(tmp_path / "shifted.npz", 12)
    runs = {
        "no untrained share": ("shifted", "independent", 1.0, ["data.untrained_fraction=0"]),
        "memorising, no DP": ("memorising", "copies", math.inf, []),
    }
    pairs = []
    for label, (folder, synthetic, epsilon, overrides) in runs.items():
        write_shifted_holdout_run(tmp_path / folder, data_file, synthetic, epsilon, overrides)
        run_attacks(tmp_path / folder, ["mia-distance"], ATTACK_OPTIONS, tmp_path, device=CPU)
        pairs.append(f"{label}={tmp_path / folder}")
    out = tmp_path / "verdicts.json"

    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), "--command", "the test", *pairs],
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    rows = {(row[0], row[2]): dict(zip(result["columns"], row)) for row in result["rows"]}
    shifted = rows["no untrained share", "calibrated"]
    memorised = rows["memorising, no DP", "calibrated"]
    assert shifted["DP bound @ 1% FPR"] == "0.020"
    assert shifted["attack's status"] == "above the DP bound"
    assert shifted["verdict"] == "above the DP bound"
    assert memorised["DP bound @ 1% FPR"] == "none (non-private)"
    assert memorised["attack's status"] == "leak" and memorised["verdict"] == "strong leakage"
    assert result["benchmark"] == "membership-verdicts" and result["command"] == "the test"
