"""The sweep's comparison: one row per epsilon from each member's summary, evaluation and
attack report, and the trade-off plots."""

import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attacks.registry import MECHANISM_AUDIT, THREAT_MODELS  # noqa: E402
from attacks.report import caveats, verdict_label  # noqa: E402
from common import atomic  # noqa: E402
from common.run_folder import StudyFolder  # noqa: E402
from study.sweep import SweepMember  # noqa: E402

# (key, column title, format)
COLUMNS = (
    ("epsilon", "epsilon", "{}"),
    ("epsilon_spent", "epsilon spent (max site)", "{:.2f}"),
    ("tstr_macro_auc", "TSTR macro AUC", "{:.3f}"),
    ("trtr_macro_auc", "TRTR macro AUC", "{:.3f}"),
    ("frechet_distance", "Fréchet distance (own features)", "{:.1f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("coverage", "coverage", "{:.3f}"),
    ("realism_auc", "realism detector AUC", "{:.3f}"),
    ("real_vs_real_auc", "detector real vs real", "{:.3f}"),
    ("strongest_mia", "strongest MIA", "{}"),
    ("mia_auc", "its AUC", "{:.3f}"),
    ("mia_tpr_at_1pct_fpr", "its TPR@1%FPR", "{:.3f}"),
    ("mia_control_auc", "its negative-control AUC", "{:.3f}"),
    ("mia_tpr_bound_at_1pct_fpr", "DP bound on TPR@1%FPR", "{:.3f}"),
    ("membership_verdict", "membership verdict", "{}"),
    ("linkage_rate", "linkage rate", "{:.3f}"),
    ("copy_rate", "copy rate", "{:.4f}"),
    ("audit_epsilon_lower_bound", "audit epsilon lower bound", "{:.2f}"),
    ("attack_caveats", "attack caveats", "{}"),
)


def _get(tree: dict, *keys):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def strongest_membership_attack(attacks: dict) -> tuple[str | None, dict, dict]:
    """The membership score with the highest AUC over every attack and variant: (its name,
    its metrics, its negative control's metrics)."""
    best_name, best, control = None, {}, {}
    for attack, report in (attacks.get("attacks") or {}).items():
        controls = (report.get("negative_control") or {}).get("membership") or {}
        for variant, scores in (report.get("membership") or {}).items():
            if scores.get("auc") is not None and scores["auc"] > best.get("auc", -1):
                best_name, best = f"{attack}: {variant}", scores
                control = controls.get(variant, {})
    return best_name, best, control


def membership_verdicts(attacks: dict) -> str | None:
    """The report's verdict on each membership threat model, in a few words."""
    entries = attacks.get("attacks") or {}
    labels = [
        f"{model}: {verdict_label(mine)}"
        for model in THREAT_MODELS
        if model != MECHANISM_AUDIT
        and (mine := {n: e for n, e in entries.items() if e["threat_model"] == model})
    ]
    return "; ".join(labels) or None


def attack_caveats(attacks: dict) -> str | None:
    """The attacks whose verdict is inconclusive, may be a population difference, or claims
    more than the accountant's epsilon allows."""
    found = caveats(attacks.get("attacks") or {})
    parts = [f"{status}: {', '.join(names)}" for status, names in found.items() if names]
    return "; ".join(parts) or None


def member_row(member: SweepMember) -> dict:
    folder = member.folder
    summary = folder.read_summary()
    evaluation = folder.read_evaluation()
    attacks = folder.read_attacks()
    spent = [e for e in (summary.get("epsilon_per_site") or {}).values() if e is not None]
    models = _get(evaluation, "classification", "models") or {}
    overall = _get(evaluation, "distribution", "overall") or {}
    mia_name, mia, mia_control = strongest_membership_attack(attacks)
    return {
        "epsilon": member.label,
        "epsilon_spent": max(spent) if spent and all(math.isfinite(e) for e in spent) else None,
        "tstr_macro_auc": _get(models, "TSTR", "macro_auc", "value"),
        "trtr_macro_auc": _get(models, "TRTR", "macro_auc", "value"),
        "frechet_distance": overall.get("frechet_distance"),
        "precision": overall.get("precision"),
        "recall": overall.get("recall"),
        "coverage": overall.get("coverage"),
        "realism_auc": _get(evaluation, "realism", "synthetic", "auc"),
        "real_vs_real_auc": _get(evaluation, "realism", "real_reference", "auc"),
        "strongest_mia": mia_name,
        "mia_auc": mia.get("auc"),
        "mia_tpr_at_1pct_fpr": _get(mia, "tpr_at_fpr", "0.01", "tpr"),
        "mia_control_auc": mia_control.get("auc"),
        "mia_tpr_bound_at_1pct_fpr": _get(attacks, "dp_bound", "tpr_bound", "0.01", "accountant"),
        "membership_verdict": membership_verdicts(attacks),
        "linkage_rate": _get(
            attacks, "attacks", "patient-linkage", "findings", "synthetic_matched_share"
        ),
        "copy_rate": _get(attacks, "attacks", "copy-detection", "findings", "copy_rate_any"),
        "audit_epsilon_lower_bound": _get(
            attacks, "attacks", "dp-audit", "findings", "lower_bound"
        ),
        "attack_caveats": attack_caveats(attacks),
        "verdicts": attacks.get("verdicts") or {},
    }


def format_cell(value, fmt: str) -> str:
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table_markdown(rows: list[dict]) -> str:
    head = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    body = [
        "| " + " | ".join(format_cell(row[key], fmt) for key, _, fmt in COLUMNS) + " |"
        for row in rows
    ]
    return "\n".join([head, rule, *body]) + "\n"


def write_table(rows: list[dict], study_dir: Path) -> None:
    study = StudyFolder(study_dir)
    atomic.write_text(study.table_markdown, table_markdown(rows))
    atomic.write_text(study.table_json, json.dumps(rows, indent=1))
    with open(study.table_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([key for key, _, _ in COLUMNS])
        writer.writerows([[row[key] for key, _, _ in COLUMNS] for row in rows])


def _x_positions(rows: list[dict]) -> tuple[list[float], list[str]]:
    """Epsilon on a log axis; the non-private member sits one decade past the largest."""
    finite = [float(row["epsilon"]) for row in rows if row["epsilon"] != "inf"]
    top = max(finite) if finite else 1.0
    xs = [top * 10 if row["epsilon"] == "inf" else float(row["epsilon"]) for row in rows]
    labels = ["∞ (no DP)" if row["epsilon"] == "inf" else row["epsilon"] for row in rows]
    return xs, labels


def plot_tradeoff(rows: list[dict], path: Path) -> None:
    """Utility against epsilon, attack success against epsilon, utility against attack."""
    xs, labels = _x_positions(rows)
    fig, (ax_u, ax_a, ax_ua) = plt.subplots(1, 3, figsize=(14, 4))

    def series(key):
        return [(x, row[key]) for x, row in zip(xs, rows) if row[key] is not None]

    for key, name, style in (
        ("tstr_macro_auc", "TSTR macro AUC", "o-"),
        ("trtr_macro_auc", "TRTR macro AUC (real)", "--"),
        ("coverage", "coverage", "s:"),
        ("realism_auc", "realism detector AUC (0.5 = real)", "d-."),
    ):
        points = series(key)
        if points:
            ax_u.plot(*zip(*points), style, label=name)
    ax_u.set(title="Utility against epsilon", ylabel="value", ylim=(0, 1.02))
    for key, name, style in (
        ("mia_auc", "strongest MIA AUC", "o-"),
        ("mia_tpr_at_1pct_fpr", "its TPR at 1% FPR", "s-"),
        ("linkage_rate", "linkage rate", "^-"),
        ("copy_rate", "copy rate", "v-"),
    ):
        points = series(key)
        if points:
            ax_a.plot(*zip(*points), style, label=name)
    ax_a.axhline(0.5, color="grey", lw=0.8, ls=":", label="chance AUC")
    ax_a.set(title="Attack success against epsilon", ylabel="value", ylim=(0, 1.02))
    for ax in (ax_u, ax_a):
        ax.set_xscale("log")
        ax.set_xticks(xs, labels)
        ax.minorticks_off()
        ax.set_xlabel("epsilon per site")
    pairs = [(row["mia_auc"], row["tstr_macro_auc"], row["epsilon"]) for row in rows]
    pairs = [p for p in pairs if None not in p]
    if pairs:
        ax_ua.plot([p[0] for p in pairs], [p[1] for p in pairs], "o-")
        for attack, utility, label in pairs:
            ax_ua.annotate(
                f"ε={label}",
                (attack, utility),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    # Fixed ranges from chance upwards: autoscaling would blow differences of 0.005 up to
    # the full axis and suggest a trade-off that is not there.
    ax_ua.axvline(0.5, color="grey", lw=0.8, ls=":", label="chance AUC")
    ax_ua.set(
        title="Utility against leakage",
        xlabel="strongest MIA AUC",
        ylabel="TSTR macro AUC",
        xlim=(min([0.45] + [p[0] - 0.02 for p in pairs]), 1.0),
        ylim=(min([0.5] + [p[1] - 0.02 for p in pairs]), 1.0),
    )
    for ax in (ax_u, ax_a, ax_ua):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare(members: list[SweepMember], study_dir: Path) -> list[dict]:
    rows = [member_row(member) for member in members]
    write_table(rows, study_dir)
    plot_tradeoff(rows, StudyFolder(study_dir).tradeoff_plot)
    return rows
