"""The membership verdicts of attacked runs as one result file: per attack and score, its AUC
and TPR at 1% FPR with their intervals, what the accountant's epsilon allows there, the
negative control's AUC, and what the attack's entry and the threat model's verdict support.

usage: .venv/bin/python benchmarks/membership_verdicts.py OUT.json --command TEXT
           [--note TEXT] LABEL=RUN_DIR [LABEL=RUN_DIR ...]

Each RUN_DIR holds the attacks.json `privsynth attack RUN_DIR` wrote; LABEL names the run in
the table (e.g. what its control population was). benchmarks/results_table.py shows the file.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A sibling script: this folder is on sys.path when the script runs.
from machine import write_result  # noqa: E402

from attacks.report import attack_status, verdict_label  # noqa: E402
from common.run_folder import RunFolder  # noqa: E402

COLUMNS = [
    "run",
    "attack",
    "score",
    "AUC [CI]",
    "TPR @ 1% FPR [CI]",
    "DP bound @ 1% FPR",
    "negative-control AUC",
    "attack's status",
    "verdict",
]


def _interval(value: float, interval: list[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def rows_of(label: str, report: dict) -> list[list[str]]:
    bound = (report.get("dp_bound") or {}).get("tpr_bound", {}).get("0.01")
    allowed = f"{bound['accountant']:.3f}" if bound else "none (non-private)"
    entries = report["attacks"]
    rows = []
    for name, entry in entries.items():
        mine = {n: e for n, e in entries.items() if e["threat_model"] == entry["threat_model"]}
        controls = (entry.get("negative_control") or {}).get("membership", {})
        for score, metrics in entry.get("membership", {}).items():
            at_1 = metrics["tpr_at_fpr"]["0.01"]
            control = controls.get(score)
            rows.append(
                [
                    label,
                    name,
                    score,
                    _interval(metrics["auc"], metrics["auc_ci"]),
                    _interval(at_1["tpr"], at_1["ci"]),
                    allowed,
                    _interval(control["auc"], control["auc_ci"]) if control else "–",
                    attack_status(entry),
                    verdict_label(mine),
                ]
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--command", required=True, help="what made and attacked the runs")
    parser.add_argument("--note", default="")
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    args = parser.parse_args()
    rows = []
    for pair in args.runs:
        label, run_dir = pair.split("=", 1)
        rows += rows_of(label, RunFolder(run_dir).read_attacks())
    write_result(
        args.out,
        device="cpu",
        benchmark="membership-verdicts",
        title="Membership verdicts against a holdout of other patients",
        command=args.command,
        note=args.note,
        columns=COLUMNS,
        rows=rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
