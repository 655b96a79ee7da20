"""attacks.json and attacks.md: numbers per attack and a one-paragraph verdict per threat model."""

import json
import math
from pathlib import Path

from attacks.registry import MECHANISM_AUDIT
from common.run_folder import RunFolder

STRONG_AUC = 0.6
STRONG_TPR_AT_1 = 0.1

# What an attack's entry supports (attack_status).
LEAK = "leak"
POPULATION = "population difference"
ABOVE_BOUND = "above the DP bound"
INCONCLUSIVE = "inconclusive"
NO_LEAK = "no leak"


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


def verdict(
    threat_model: str,
    attacks: dict[str, dict],
    *,
    audits: dict[str, dict] | None = None,
    bound: dict | None = None,
) -> str:
    """One paragraph: what an attacker with this access learned, from the attacks' entries.

    audits: the report's entries of the DP mechanism audits, which decide whether a membership
    signal above the accountant's bound (attacks.dp_bound) is the mechanism's; bound: that
    bound (which audits apply to the run)."""
    ran = {name: entry for name, entry in attacks.items() if not entry["skipped"]}
    if not ran:
        reasons = "; ".join(entry["skipped"] for entry in attacks.values())
        return f"No attack for this threat model ran ({reasons})."
    details = "; ".join(f"{name}: {entry['summary']}" for name, entry in ran.items())
    if threat_model == MECHANISM_AUDIT:
        audits = {name: entry["findings"] for name, entry in ran.items()}
        violated = [name for name, found in audits.items() if found["violation"]]
        if violated:
            audit = audits[violated[0]]
            return (
                f"PRIVACY VIOLATION. The {violated[0]} empirical lower bound (epsilon >= "
                f"{audit['lower_bound']:.3f}) exceeds the accountant's epsilon "
                f"({audit['accountant_epsilon']:.3f}): the site's DP mechanism leaks more "
                f"than it claims. {details}."
            )
        # Audits from before ceilings were reported count as testable.
        untested = [n for n, found in audits.items() if not found.get("claim_testable", True)]
        if untested:
            return (
                f"Not tested: the claimed epsilon is above the ceiling of {', '.join(untested)} "
                "(the most its canaries could certify), so no violation could have shown. "
                f"{details}."
            )
        return (
            "Consistent with the accountant: the empirical lower bound does not exceed the "
            f"claimed epsilon, which is below the audit's ceiling. {details}. A lower bound is "
            "not a proof of privacy; it shows no implementation bug of this size."
        )
    return _verdict(threat_model, ran, details, _audit_pointer(audits or {}, bound))


def shift_explained(metrics: dict, control: dict) -> bool:
    """Whether a score's signal may be a difference between the member and non-member
    populations: its negative control scores above chance as well, and the score's AUC does
    not clear the control's (their CIs overlap)."""
    return membership_level(control) != "none" and metrics["auc_ci"][0] <= control["auc_ci"][1]


def _control_blind(entry: dict) -> bool:
    """Whether the entry's negative control splits the non-members (it cannot see a difference
    between the training population and the holdout's)."""
    return (entry.get("negative_control") or {}).get("training_population") is False


def _shifted(entry: dict) -> dict[str, str]:
    """score -> why a population difference may explain its signal, for each score with signal
    beyond chance that its negative control explains: the control scores above chance against
    the non-members as well and the score does not clear it (shift_explained), or the members
    do not stand out from the control, real images of their own population."""
    control = entry.get("negative_control") or {}
    against_nonmembers = control.get("membership", {})
    against_members = control.get("members_against_control", {})
    found = {}
    for score, metrics in entry["membership"].items():
        if membership_level(metrics) == "none":
            continue
        here = f"{score}: AUC {metrics['auc']:.3f} against the non-members"
        if score in against_nonmembers and shift_explained(metrics, against_nonmembers[score]):
            other = against_nonmembers[score]
            found[score] = (
                f"{here}, the control's {other['auc']:.3f} against them, "
                f"{metrics['auc'] - other['auc']:+.3f} above it"
            )
        elif score in against_members and membership_level(against_members[score]) == "none":
            other = against_members[score]
            found[score] = (
                f"{here}, {other['auc']:.3f} {_ci(other['auc_ci'])} against the control, at chance"
            )
    return found


def _unexplained(entry: dict) -> list[dict]:
    """The membership scores with signal beyond chance that their control does not explain."""
    shifted = _shifted(entry)
    return [
        metrics
        for score, metrics in entry["membership"].items()
        if membership_level(metrics) != "none" and score not in shifted
    ]


def _above_bound(entry: dict) -> list[dict]:
    """The entry's TPRs above the accountant's bound, of scores their control does not explain."""
    shifted = _shifted(entry)
    return [found for found in entry.get("above_dp_bound", []) if found["score"] not in shifted]


def attack_status(entry: dict) -> str:
    """What one attack's entry supports. LEAK: signal beyond chance (copies and linked patients
    are leaks whatever their rate; a leak stands whatever the attack's power); POPULATION:
    membership signal that its negative control matches; ABOVE_BOUND: membership signal more
    than the accountant's epsilon allows (a population difference or a leaking mechanism);
    NO_LEAK: nothing found by an attack that found its positive control; INCONCLUSIVE: nothing
    found by one that did not."""
    if entry["leaked"]:
        if entry["membership"] and not _unexplained(entry):
            return POPULATION
        return ABOVE_BOUND if _above_bound(entry) else LEAK
    return NO_LEAK if (entry.get("power") or {}).get("adequate") else INCONCLUSIVE


def caveats(attacks: dict[str, dict]) -> dict[str, list[str]]:
    """Names of the attacks that ran whose status is INCONCLUSIVE, POPULATION or ABOVE_BOUND,
    by status;
    the DP audit answers another question and has its own verdict."""
    found: dict[str, list[str]] = {INCONCLUSIVE: [], POPULATION: [], ABOVE_BOUND: []}
    for name, entry in attacks.items():
        if entry["skipped"] or entry["threat_model"] == MECHANISM_AUDIT:
            continue
        status = attack_status(entry)
        if status in found:
            found[status].append(name)
    return found


def _weakness(name: str, entry: dict) -> str:
    power = entry.get("power")
    if not power:
        return f"{name} is inconclusive: no positive control on record (an older report)"
    few = ""
    if power["count"] < power["min_count"]:
        few = f", over {power['count']} cases where {power['min_count']} are needed"
    return (
        f"{name} is inconclusive, the attacker is too weak on this data: {power['control']}: "
        f"{_format(power['value'])} against a floor of {power['floor']:g}{few}; it would be "
        f"stronger with {power['advice']}"
    )


def _population_note(name: str, entry: dict) -> str:
    scores = "; ".join(_shifted(entry).values())
    return (
        f"{name}'s negative control ({entry['negative_control']['control']}) explains its "
        f"signal ({scores}): a population difference may explain that signal"
    )


def _bound_note(name: str, entry: dict, audit: str) -> str:
    """The words for an attack whose TPR lies above what the accountant's epsilon allows."""
    found = _above_bound(entry)
    epsilon = f"epsilon {found[0]['epsilon']:.3g}"
    scores = "; ".join(
        f"{f['score']}: TPR {f['tpr']:.3f} at {float(f['fpr']):.1%} FPR, its interval from "
        f"{f['tpr_ci_low']:.3f}, where {epsilon} allows at most {f['bound']:.3f}"
        for f in found
    )
    return (
        f"{name} is above what {epsilon} allows for membership: the members and non-members "
        f"differ as populations, or the mechanism leaks; the audit decides ({audit}). {scores}"
    )


def _audit_pointer(audits: dict[str, dict], bound: dict | None) -> str:
    """What the DP audits of this report found, or which one to run."""
    ran = {name: entry for name, entry in audits.items() if not entry["skipped"]}
    if not ran:
        names = " or ".join((bound or {}).get("audits") or ["dp-audit", "release-audit"])
        return f"no audit has run on this run yet; run `privsynth attack RUN_DIR --only {names}`"
    found = []
    for name, entry in ran.items():
        if entry["findings"].get("violation"):
            found.append(f"{name} found the mechanism leaks ({entry['summary']})")
        elif not entry["findings"].get("claim_testable", True):
            found.append(f"{name} could not test the claim ({entry['summary']})")
        else:
            found.append(
                f"{name} found no violation ({entry['summary']}), which leaves a population "
                "difference the likelier cause"
            )
    return "; ".join(found)


def verdict_label(attacks: dict[str, dict]) -> str:
    """The verdict on one threat model in a few words (the head of `verdict`): "strong
    leakage", "weak leakage", ABOVE_BOUND, POPULATION, INCONCLUSIVE, "no measurable leakage",
    or "not run"."""
    ran = {name: entry for name, entry in attacks.items() if not entry["skipped"]}
    status = {attack_status(entry) for entry in ran.values()}
    if not ran:
        return "not run"
    if LEAK in status:
        # Membership scores count as strong past the thresholds of membership_level.
        strong = any(
            not entry["membership"]
            or any(membership_level(m) == "strong" for m in _unexplained(entry))
            for entry in ran.values()
            if attack_status(entry) == LEAK
        )
        return "strong leakage" if strong else "weak leakage"
    for wanted in (ABOVE_BOUND, POPULATION, INCONCLUSIVE):
        if wanted in status:
            return wanted
    return "no measurable leakage"


def _verdict(threat_model: str, ran: dict[str, dict], details: str, audit: str) -> str:
    status = {name: attack_status(entry) for name, entry in ran.items()}

    def having(wanted: str) -> list[str]:
        return [name for name in ran if status[name] == wanted]

    leaks, shifted = having(LEAK), having(POPULATION)
    above, weak, silent = having(ABOVE_BOUND), having(INCONCLUSIVE), having(NO_LEAK)
    access = f"with access to {threat_model}"
    label = verdict_label(ran)
    if leaks:
        head = (
            f"{'Strong' if label == 'strong leakage' else 'Weak but measurable'} leakage: "
            f"{access}, {', '.join(leaks)} found signal beyond chance."
        )
    elif above:
        head = (
            f"Inconclusive, above what the accountant's epsilon allows: {access}, "
            f"{', '.join(above)} told members from non-members better than any attack can on a "
            "mechanism with the sites' epsilon."
        )
    elif shifted:
        head = (
            f"Inconclusive, a population difference: {access}, {', '.join(shifted)} told "
            "members from non-members, but its negative control (real images of the training "
            "population that no site trained on) scored about as high against the non-members, "
            "or the members did not stand out from it: the signal may be a difference between "
            "the member and non-member populations rather than membership."
        )
    elif weak:
        head = f"Inconclusive: {access}, the attacker is too weak on this data to show leakage."
        if silent:
            head += f" The attacks shown to work ({', '.join(silent)}) found nothing."
    else:
        head = (
            f"No measurable leakage: {access}, no attack told members from non-members (or found "
            "copies or linked patients) better than chance, and each found what was planted for "
            "it (its positive control)."
        )
    notes = [_population_note(name, ran[name]) for name in ran if _shifted(ran[name])]
    notes += [_bound_note(name, ran[name], audit) for name in ran if _above_bound(ran[name])]
    blind = [name for name in [*leaks, *above] if _control_blind(ran[name])]
    if blind:
        notes.append(
            f"The negative control of {', '.join(blind)} cannot see a population difference: the "
            "run kept no untrained images of the training population, so a holdout of other "
            "patients may differ from the members as a population"
        )
    notes += [_weakness(name, ran[name]) for name in weak]
    return " ".join([head, *(f"{note}." for note in notes), f"{details}."])


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


def _controls_table(attacks: dict[str, dict]) -> list[str]:
    rows = [
        (name, entry)
        for name, entry in attacks.items()
        if not entry["skipped"] and (entry.get("power") or entry.get("negative_control"))
    ]
    if not rows:
        return []
    lines = [
        "## Controls",
        "",
        "Positive control: what the attack found of what was planted for it; below the floor "
        "the attacker is too weak on this data and its silence proves nothing. Negative "
        "control: the membership scores with the members replaced by real images no site "
        "trained on; above chance, a difference between the populations may explain the "
        "attack's signal. Members against the control: the members scored against those "
        "images, where they are of the training population; at chance, the members do not "
        "stand out from their own population.",
        "",
        "| attack | status | power | floor | shown to work | negative control AUC [CI] "
        "| members against the control AUC [CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in rows:
        power = entry.get("power") or {}
        control = entry.get("negative_control") or {}
        lines.append(
            f"| {name} | {attack_status(entry)} | {_format(power.get('value', '–'))} | "
            f"{_format(power.get('floor', '–'))} | "
            f"{'yes' if power.get('adequate') else 'no'} | "
            f"{_aucs(control.get('membership', {}))} | "
            f"{_aucs(control.get('members_against_control', {}))} |"
        )
    return [*lines, ""]


def _aucs(membership: dict[str, dict]) -> str:
    return "; ".join(f"{s} {m['auc']:.3f} {_ci(m['auc_ci'])}" for s, m in membership.items()) or "–"


def _bound_table(bound: dict | None, attacks: dict[str, dict]) -> list[str]:
    """Each membership score's TPRs beside what the accountant's epsilon allows."""
    if bound is None:
        return []
    lines = [
        "## Against the accountant's epsilon",
        "",
        f"No membership attack can do better than the bound of the site with the largest epsilon "
        f"({bound['site']}, epsilon {bound['epsilon']:.3g}): TPR <= e^epsilon FPR + delta, and "
        f"the lowest of those bounds over the accountant's privacy profile (from "
        f"{bound['source']}). A TPR whose interval lies above it is no membership the "
        "accountant allows: the members and non-members differ as populations, or the mechanism "
        "leaks; the audit decides.",
        "",
        "| attack | score | FPR | TPR [CI] | e^epsilon FPR + delta | accountant's bound | above |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in attacks.items():
        above = {(f["score"], f["fpr"]) for f in entry.get("above_dp_bound", [])}
        for score, metrics in entry.get("membership", {}).items():
            for fpr, cell in metrics["tpr_at_fpr"].items():
                allowed = bound["tpr_bound"].get(fpr)
                if allowed is None:
                    continue
                mark = "yes" if (score, fpr) in above else ("no" if cell["resolved"] else "–")
                lines.append(
                    f"| {name} | {score} | {float(fpr):.1%} | {cell['tpr']:.3f} {_ci(cell['ci'])} "
                    f"| {allowed['epsilon_delta']:.4f} | {allowed['accountant']:.4f} | {mark} |"
                )
    return [*lines, ""]


def _control_lines(entry: dict) -> list[str]:
    lines = []
    if entry.get("power"):
        power = entry["power"]
        lines.append(
            f"- positive control: {power['control']}: {_format(power['value'])} (floor "
            f"{power['floor']:g}, {'met' if power['adequate'] else 'not met'}); stronger with "
            f"{power['advice']}"
        )
    if entry.get("negative_control"):
        lines.append(f"- negative control: {entry['negative_control']['control']}")
    return lines


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
        f"Negative control population: {evaluation.get('control', 'not recorded')}.",
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
    lines += _bound_table(report.get("dp_bound"), report["attacks"])
    lines += _controls_table(report["attacks"])
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
        lines += _control_lines(entry)
        lines += [f"- {key}: {_format(value)}" for key, value in _flatten(entry["findings"])]
        lines.append("")
        lines += [f"![{name}]({figure})" for figure in entry["figures"]] + [""]
    return "\n".join(lines)


def write_report(run_dir: Path, report: dict) -> None:
    RunFolder(run_dir).write_attacks(to_json(report), to_markdown(report))
