"""Print the headline numbers of `privsynth attack` for several runs as one Markdown table.

Usage: .venv/bin/python benchmarks/attacks_table.py RUN_DIR [RUN_DIR ...]
Each RUN_DIR must hold the attacks.json that `privsynth attack RUN_DIR` wrote.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.run_folder import RunFolder  # noqa: E402


def _row(report: dict) -> dict[str, str]:
    cells = {}
    for name, entry in report["attacks"].items():
        if entry["skipped"]:
            cells[name] = "skipped"
            continue
        for score, metrics in entry["membership"].items():
            at = metrics["tpr_at_fpr"]
            cells[f"{name}: {score}"] = (
                f"{metrics['auc']:.3f} / {at['0.01']['tpr']:.3f} / {at['0.001']['tpr']:.3f}"
                + ("" if at["0.001"]["resolved"] else "*")
            )
    findings = {name: entry["findings"] for name, entry in report["attacks"].items()}
    if "patient-linkage" in findings and findings["patient-linkage"]:
        link = findings["patient-linkage"]
        cells["linkage: verification AUC"] = f"{link['verification_auc']:.3f}"
        cells["linkage: synthetic / non-member matched"] = (
            f"{link['synthetic_matched_share']:.3f} / {link['nonmember_matched_share']:.3f}"
        )
        cells["linkage: patients hit"] = f"{link['training_patients_hit_share']:.3f}"
        cells["linkage: precision@1 (chance)"] = (
            f"{link['precision_at_1']:.3f} ({link['precision_at_1_chance']:.3f})"
        )
    if "copy-detection" in findings and findings["copy-detection"]:
        copy = findings["copy-detection"]
        cells["copies: rate embedding / tiled (chance)"] = (
            f"{copy['embedding']['copy_rate']:.4f} / {copy['tiled_l2']['copy_rate']:.4f} "
            f"({copy['embedding']['expected_by_chance']:.4f})"
        )
        cells["copies: training images copied"] = f"{copy['training_images_copied_share']:.4f}"
        cells["copies: DCR p5 synthetic / holdout"] = (
            f"{copy['dcr_p5']['synthetic']:.3f} / {copy['dcr_p5']['holdout']:.3f}"
        )
        cells["copies: NNDR p5 synthetic / holdout"] = (
            f"{copy['nndr_p5']['synthetic']:.3f} / {copy['nndr_p5']['holdout']:.3f}"
        )
        cells["copies: authenticity synthetic / holdout"] = (
            f"{copy['authenticity']['synthetic']:.3f} / {copy['authenticity']['holdout']:.3f}"
        )
    if "dp-audit" in findings and findings["dp-audit"]:
        audit = findings["dp-audit"]
        claimed = audit["accountant_epsilon"]  # "inf" (a string in JSON) when non-private
        claimed = claimed if isinstance(claimed, str) else f"{claimed:.3f}"
        cells["DP audit: lower bound vs accountant"] = (
            f"{audit['lower_bound']:.3f} vs {claimed} ({audit['audit_steps']} steps)"
        )
    cells["wall time (s)"] = f"{sum(e['seconds'] for e in report['attacks'].values()):.0f}"
    return cells


def _report(run: RunFolder) -> dict:
    run.require(run.attacks_file, "the report `privsynth attack` writes")
    return run.read_attacks()


def main(run_dirs: list[str]) -> None:
    reports = [_report(RunFolder(d)) for d in run_dirs]
    rows = [_row(report) for report in reports]
    keys = list(dict.fromkeys(key for row in rows for key in row))
    print("| measure | " + " | ".join(Path(d).name for d in run_dirs) + " |")
    print("|---|" + "---|" * len(run_dirs))
    for key in keys:
        print(f"| {key} | " + " | ".join(row.get(key, "") for row in rows) + " |")
    print("\nMembership cells: AUC / TPR at 1% FPR / TPR at 0.1% FPR; * = 0.1% not resolved.")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
