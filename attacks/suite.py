"""Run the registered attacks on a finished run and write the report into its folder."""

import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

# Importing the attack modules registers them.
from attacks import (  # noqa: F401
    copy_detection,
    discriminator,
    distance,
    domias,
    dp_audit,
    epsilon_ball,
    linkage,
    reconstruction,
    release_audit,
)
from attacks.context import AttackOptions, build_context
from attacks.dp_bound import above_bound, membership_bound
from attacks.plots import plot_roc
from attacks.registry import ATTACKS, MECHANISM_AUDIT, THREAT_MODELS, Attack, AttackResult
from attacks.report import membership_level, membership_line, verdict, write_report
from common.errors import UserError
from common.run_data import load_run
from common.run_folder import RunFolder


def _epsilon_per_site(run_dir: Path) -> dict:
    return RunFolder(run_dir).read_summary().get("epsilon_per_site", {})


def _earlier_entries(run_dir: Path, options: AttackOptions) -> dict:
    """The attacks of an earlier report on this run made with the same options: a run of a few
    attacks (`--only`) adds to it instead of dropping the rest."""
    earlier = RunFolder(run_dir).read_attacks()
    if earlier.get("options") != json.loads(json.dumps(vars(options))):
        return {}
    return earlier.get("attacks", {})


def attack_entry(
    attack: Attack,
    result: AttackResult,
    *,
    figures: list[str],
    seconds: float,
    bound: dict | None = None,
) -> dict:
    """The report's entry of one attack; its membership scores are judged by membership_level
    and against `bound`, what the accountant's epsilon allows (attacks.dp_bound)."""
    levels = [membership_level(metrics) for metrics in result.membership.values()]
    summary = result.summary or "; ".join(
        membership_line(score, metrics) for score, metrics in result.membership.items()
    )
    return {
        "threat_model": attack.threat_model,
        "description": attack.description,
        "member_direction": attack.member_direction,
        "seconds": seconds,
        "skipped": result.skipped,
        "leaked": result.leaked or any(level != "none" for level in levels),
        "summary": summary,
        "findings": result.findings,
        "membership": result.membership,
        "power": result.power,
        "negative_control": result.negative_control,
        "above_dp_bound": above_bound(result.membership, bound),
        "figures": figures,
    }


def run_attacks(
    run_dir: Path,
    names: list[str] | None,
    options: AttackOptions,
    cache_dir: Path,
    *,
    device: torch.device,
) -> dict:
    """Run `names` (default: every attack) with their networks on `device` and write
    attacks.json / attacks.md; the report.

    With `names`, the other attacks of an earlier report with the same options are kept.
    """
    run_dir = Path(run_dir)
    earlier = _earlier_entries(run_dir, options) if names else {}
    names = names or ATTACKS.names()
    attacks = [ATTACKS.get(name) for name in names]
    run = load_run(run_dir)
    if len(run.members) == 0:
        split = RunFolder(run_dir).split_file
        raise UserError(f"{split} lists no training images; nothing to attack")
    folder = RunFolder(run_dir)
    context = build_context(run, options, folder.attack_figures, cache_dir, device=device)
    bound = membership_bound(run)
    entries = {}
    for attack in tqdm(attacks, desc="attacks", unit="attack"):
        started = time.perf_counter()
        result = attack.run(context)
        figures = list(result.figures)
        if result.membership:
            path = folder.attack_figures / f"roc-{attack.name}.png"
            plot_roc(result.membership, f"{attack.name} ({attack.threat_model})", path)
            figures.insert(0, str(path.relative_to(folder.path)))
        seconds = time.perf_counter() - started
        entries[attack.name] = attack_entry(
            attack, result, figures=figures, seconds=seconds, bound=bound
        )
    kept = {name: entry for name, entry in earlier.items() if name not in entries}
    for entry in kept.values():  # judged again, by today's rule
        if entry["membership"]:
            levels = [membership_level(metrics) for metrics in entry["membership"].values()]
            entry["leaked"] = any(level != "none" for level in levels)
            entry["above_dp_bound"] = above_bound(entry["membership"], bound)
    entries = {name: {**kept, **entries}[name] for name in ATTACKS if name in {**kept, **entries}}
    audits = {n: e for n, e in entries.items() if e["threat_model"] == MECHANISM_AUDIT}
    verdicts = {}
    for threat_model in THREAT_MODELS:
        mine = {n: e for n, e in entries.items() if e["threat_model"] == threat_model}
        if mine:
            verdicts[threat_model] = verdict(threat_model, mine, audits=audits, bound=bound)
    report = {
        "run_dir": str(run_dir),
        "epsilon_per_site": _epsilon_per_site(run_dir),
        "options": vars(options),
        "evaluation": {
            "members": len(context.members),
            "nonmembers": len(context.nonmembers),
            "auxiliary": context.auxiliary_source,
            "control": context.control_source,
        },
        "dp_bound": bound,
        "verdicts": verdicts,
        "attacks": entries,
    }
    write_report(run_dir, report)
    return report
