"""attacks.json and attacks.md: numbers per attack and a one-paragraph verdict per threat model."""

import json
import math
from pathlib import Path

from attacks.registry import MECHANISM_AUDIT
from common import atomic

STRONG_AUC = 0.6
STRONG_TPR_AT_1 = 0.1


def membership_level(metrics: dict) -> str:
    """How clearly a score separates members from non-members: "strong", "weak" or "none",
    judged on the lower ends of the CIs, not on point estimates (few patients make those noisy).

    strong: the AUC's CI lies above 0.6, or TPR at 1% FPR's above 10% (where resolved);
    weak: the AUC's CI excludes 0.5, or TPR at 1% FPR's CI lies above 1%.
    """
    low_fpr = metrics["tpr_at_fpr"]["0.01"]
    tpr_low = low_fpr["ci"][0] if low_fpr["resolved"] else 0.0
    if metrics["auc_ci"][0] >= STRONG_AUC or tpr_low >= STRONG_TPR_AT_1:
        return "strong"
    if metrics["auc_ci"][0] > 0.5 or tpr_low > 0.01:
        return "weak"
    return "none"


def _ci(values: list[float]) -> str:
    return f"[{values[0]:.3f}, {values[1]:.3f}]"


def membership_line(name: str, metrics: dict) -> str:
    at1, at01 = metrics["tpr_at_fpr"]["0.01"], metrics["tpr_at_fpr"]["0.001"]
    return (
        f"{name}: AUC {metrics['auc']:.3f} {_ci(metrics['auc_ci'])}, TPR {at1['tpr']:.3f} at 1% "
        f"FPR, {at01['tpr']:.3f} at 0.1% FPR{'' if at01['resolved'] else ' (unresolved)'}"
    )


def verdict(threat_model: str, attacks: dict[str, dict]) -> str:
    """One paragraph: what an attacker with this access learned, from the attacks' entries."""
    ran = {name: entry for name, entry in attacks.items() if not entry["skipped"]}
    if not ran:
        reasons = "; ".join(entry["skipped"] for entry in attacks.values())
        return f"No attack for this threat model ran ({reasons})."
    leaking = [name for name, entry in ran.items() if entry["leaked"]]
    details = "; ".join(f"{name}: {entry['summary']}" for name, entry in ran.items())
    if threat_model == MECHANISM_AUDIT:
        audit = next(iter(ran.values()))["findings"]
        if audit["violation"]:
            return (
                f"PRIVACY VIOLATION. The audit's empirical lower bound (epsilon >= "
                f"{audit['lower_bound']:.3f}) exceeds the accountant's epsilon "
                f"({audit['accountant_epsilon']:.3f}): the DP-SGD implementation leaks more "
                f"than it claims. {details}."
            )
        return (
            "Consistent with the accountant: the empirical lower bound does not exceed the "
            f"claimed epsilon. {details}. A lower bound is not a proof of privacy; it shows "
            "no implementation bug of this size."
        )
    if not leaking:
        return (
            f"No measurable leakage: with access to {threat_model}, no attack told members from "
            f"non-members (or found copies or linked patients) better than chance. {details}."
        )
    # Copies and re-identified patients are leaks whatever their rate; membership scores
    # count as strong past the thresholds of membership_level.
    strong = any(
        not entry["membership"]
        or any(membership_level(m) == "strong" for m in entry["membership"].values())
        for name, entry in ran.items()
        if name in leaking
    )
    strength = "Strong" if strong else "Weak but measurable"
    return (
        f"{strength} leakage: with access to {threat_model}, {', '.join(leaking)} "
        f"found signal beyond chance. {details}."
    )


def to_json(report: dict) -> str:
    """Curves stay out of the JSON (they are in the figures); non-finite numbers as strings."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "roc"}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return value

    return json.dumps(clean(report), indent=2)


def _flatten(findings: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for key, value in findings.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_markdown(report: dict) -> str:
    lines = [f"# Privacy attacks on `{report['run_dir']}`", ""]
    epsilons = ", ".join(
        f"{site} {_format(eps)}" for site, eps in report["epsilon_per_site"].items()
    )
    evaluation = report["evaluation"]
    lines += [
        f"Accountant's epsilon per site: {epsilons or 'unknown'}.",
        f"Evaluation: {evaluation['members']} members vs {evaluation['nonmembers']} "
        f"patient-disjoint non-members (balanced). Auxiliary data: {evaluation['auxiliary']}.",
        "",
        "## Verdicts",
        "",
    ]
    for threat_model, text in report["verdicts"].items():
        lines += [f"**{threat_model[0].upper()}{threat_model[1:]}.** {text}", ""]
    lines += [
        "## Membership inference",
        "",
        "| attack | score | AUC [95% CI] | TPR @ 1% FPR [CI] | TPR @ 0.1% FPR [CI] "
        "| balanced acc. |",
        "|---|---|---|---|---|---|",
    ]
    notes = set()
    for name, entry in report["attacks"].items():
        for score, metrics in entry.get("membership", {}).items():
            at1, at01 = metrics["tpr_at_fpr"]["0.01"], metrics["tpr_at_fpr"]["0.001"]
            cells = []
            for cell in (at1, at01):
                mark = "" if cell["resolved"] else "*"
                cells.append(f"{cell['tpr']:.3f}{mark} {_ci(cell['ci'])}")
                if cell["note"]:
                    notes.add(cell["note"])
            lines.append(
                f"| {name} | {score} | {metrics['auc']:.3f} {_ci(metrics['auc_ci'])} | "
                f"{cells[0]} | {cells[1]} | {metrics['balanced_accuracy']:.3f} |"
            )
    lines += [""] + [f"\\* {note}." for note in sorted(notes)] + [""]
    for name, entry in report["attacks"].items():
        lines += [f"## {name}", "", f"{entry['description']}.", ""]
        lines += [
            f"- threat model: {entry['threat_model']}",
            f"- score: {entry['member_direction']}",
            f"- time: {entry['seconds']:.1f} s",
        ]
        if entry["skipped"]:
            lines += [f"- skipped: {entry['skipped']}", ""]
            continue
        if entry["summary"]:
            lines.append(f"- result: {entry['summary']}")
        lines += [f"- {key}: {_format(value)}" for key, value in _flatten(entry["findings"])]
        lines.append("")
        lines += [f"![{name}]({figure})" for figure in entry["figures"]] + [""]
    return "\n".join(lines)


def write_report(run_dir: Path, report: dict) -> None:
    atomic.write_text(run_dir / "attacks.json", to_json(report))
    atomic.write_text(run_dir / "attacks.md", to_markdown(report))
