"""benchmarks/gpu.sh runs on a machine without a GPU: the CPU half, and a result file that
says no GPU was available."""

import json
import subprocess
import sys

import pytest

from tests.helpers.datasets import write_bright_dark_npz
from tests.helpers.processes import REPO, env


@pytest.mark.timeout(900)
def test_the_gpu_benchmark_runs_its_cpu_half_without_a_gpu(tmp_path):
    npz = write_bright_dark_npz(tmp_path / "pneumoniamnist.npz")
    out = tmp_path / "gpu.json"

    done = subprocess.run(
        [str(REPO / "benchmarks" / "gpu.sh"), str(npz), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env(PYTHON=sys.executable),
        timeout=900,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["title"] == "GPU against CPU (no GPU was available)"
    measures = {row[0]: row for row in result["rows"]}
    assert "DP step / non-private, dcgan 28 px" in measures
    assert "pneumoniamnist epsilon 10, wall s" in measures
    assert "4 phantom sites, s per round" in measures
    assert all(row[1] == "no GPU" for name, row in measures.items() if "seeded" not in name)
    assert float(measures["pneumoniamnist epsilon 10, wall s"][2]) > 0
