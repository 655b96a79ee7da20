"""The sweep's training-time estimate against the measured wall time of the same run.

    python benchmarks/sweep_estimate.py pneumoniamnist \
        --set data.medmnist.path=../shared/data/pneumoniamnist.npz

Writes benchmarks/results/sweep-estimate-<preset>.json (estimate, measured, ratio); run it on
a quiet machine, since both numbers are wall times.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.config import load_config  # noqa: E402
from methods import method_for  # noqa: E402
from server.simulation import simulate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="preset name or YAML path")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, help="result file (default: results/...)")
    parser.add_argument("--run-dir", type=Path, help="keep the run here (default: discarded)")
    args = parser.parse_args()
    config = load_config(args.config, args.set)

    started = time.perf_counter()
    estimate = method_for(config).estimate_seconds(config)
    probe = time.perf_counter() - started
    print(f"estimate: {estimate:.0f} s (probe took {probe:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        simulate(config, args.run_dir or Path(scratch) / "run")
        measured = time.perf_counter() - started
    print(f"measured: {measured:.0f} s; estimate / measured = {estimate / measured:.2f}")

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    result = {
        "benchmark": "sweep-estimate",
        "preset": config.name,
        "commit": commit,
        "command": " ".join(["python", "benchmarks/sweep_estimate.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "estimate_s": estimate,
        "measured_s": measured,
        "ratio": estimate / measured,
    }
    out = args.out or RESULTS / f"sweep-estimate-{config.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"result: {out}")


if __name__ == "__main__":
    main()
