"""`privsynth sweep`: one federation per epsilon, each evaluated and attacked, then compared.

The study folder holds `sweep.json` (what was asked), one run folder per epsilon (`eps-1`,
`eps-inf`, ...) and the comparison (`table.md`, `table.csv`, `tradeoff.png`, `report.html`).
A member whose outputs exist is not redone, so an interrupted sweep resumes where it stopped.
"""

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm

from common import atomic
from common.config import Config, config_from_dict, config_to_dict
from common.device import resolve_device
from common.errors import UserError
from common.run_folder import RunFolder, StudyFolder


@dataclass(frozen=True)
class SweepMember:
    epsilon: float
    run_dir: Path

    @property
    def label(self) -> str:
        return epsilon_label(self.epsilon)

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.run_dir)

    def done(self, stage: str) -> bool:
        return STAGE_DONE[stage](self.folder)


@dataclass(frozen=True)
class SweepSettings:
    """What each member runs after training; the defaults are the commands' own."""

    evaluation: object = None  # evaluation.evaluate.EvaluationSettings; None = defaults
    attacks: object = None  # attacks.context.AttackOptions; None = defaults
    cache_dir: Path | None = None
    stages: tuple[str, ...] = ("train", "evaluate", "attack")
    # Where every member trains, is evaluated and attacked; None = the config's runtime.device.
    # Not part of the pinned config: a sweep may resume on another machine.
    device: torch.device | None = None


# Whether a member's stage has left its output in the member's run folder.
STAGE_DONE = {
    "train": lambda folder: folder.trained,
    "evaluate": lambda folder: folder.evaluated,
    "attack": lambda folder: folder.attacked,
}


def epsilon_label(epsilon: float) -> str:
    return "inf" if math.isinf(epsilon) else f"{epsilon:g}"


def parse_epsilons(text: str) -> tuple[float, ...]:
    """ "1,3,10,inf" -> (1.0, 3.0, 10.0, inf), sorted, without repeats."""
    values = []
    for part in text.split(","):
        part = part.strip().lower()
        try:
            value = math.inf if part in ("inf", ".inf", "infinity") else float(part)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise UserError(
                f"--epsilons {text!r}: give positive numbers or inf separated by commas, "
                "e.g. 1,3,10,inf"
            )
        values.append(value)
    return tuple(sorted(set(values)))


def plan_sweep(config: Config, epsilons: tuple[float, ...], study_dir: Path) -> list[SweepMember]:
    study = StudyFolder(study_dir)
    return [SweepMember(eps, study.member(epsilon_label(eps)).path) for eps in epsilons]


def member_config(config: Config, epsilon: float) -> Config:
    """The sweep's config at one epsilon; every site gets that budget."""
    raw = config_to_dict(config)
    raw["privacy"]["target_epsilon"] = epsilon
    raw["privacy"]["max_epsilon"] = None
    raw["privacy"]["sites"] = []
    raw["name"] = f"{config.name}-eps-{epsilon_label(epsilon)}"
    return config_from_dict(raw)


def on_device(config: Config, device: torch.device) -> Config:
    """`config` with runtime.device naming `device`: what a simulation and its sites read."""
    return replace(config, runtime=replace(config.runtime, device=device.type))


def sweep_device(config: Config, settings: SweepSettings) -> torch.device:
    """The device the settings name, else the config's runtime.device resolved."""
    return settings.device or resolve_device(config.runtime.device)


def _record_request(study_dir: Path, config: Config, epsilons: tuple[float, ...]) -> None:
    """sweep.json pins the config; resuming with another config would mix two studies.

    The pinned config is compared after parsing, so a key added to privsynth since the sweep
    started (its default keeps the old behaviour) does not block the resume."""
    path = StudyFolder(study_dir).request_file
    asked = {"config": config_to_dict(config), "epsilons": [epsilon_label(e) for e in epsilons]}
    if path.exists():
        kept = json.loads(path.read_text())
        if config_to_dict(config_from_dict(kept["config"])) != asked["config"]:
            raise UserError(
                f"{study_dir} holds a sweep of another config; resume it with the same config "
                "and --set values, or choose another --study-dir"
            )
        kept_eps = set(kept["epsilons"]) | set(asked["epsilons"])
        asked["epsilons"] = sorted(kept_eps, key=lambda e: math.inf if e == "inf" else float(e))
    study_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(asked, indent=1))


def _train(
    member: SweepMember, config: Config, settings: SweepSettings, device: torch.device
) -> None:
    from server.simulation import simulate

    resume = member.folder.resumable
    member_on_device = on_device(member_config(config, member.epsilon), device)
    simulate(member_on_device, member.run_dir, resume=resume)


def _evaluate(
    member: SweepMember, config: Config, settings: SweepSettings, device: torch.device
) -> None:
    from evaluation.evaluate import EvaluationSettings, evaluate_run

    evaluate_run(member.run_dir, settings.evaluation or EvaluationSettings(), device=device)


def _attack(
    member: SweepMember, config: Config, settings: SweepSettings, device: torch.device
) -> None:
    from attacks.context import AttackOptions
    from attacks.suite import run_attacks

    cache = settings.cache_dir or member.folder.cache("attacks")
    run_attacks(member.run_dir, None, settings.attacks or AttackOptions(), cache, device=device)


STAGES = {"train": _train, "evaluate": _evaluate, "attack": _attack}


def run_sweep(
    config: Config,
    epsilons: tuple[float, ...],
    study_dir: Path,
    settings: SweepSettings = SweepSettings(),
    estimate_s: dict[str, float] | None = None,
) -> list[SweepMember]:
    """Each member's missing stages, in order, one member after the other."""
    device = sweep_device(config, settings)
    study_dir = Path(study_dir)
    study = StudyFolder(study_dir)
    _record_request(study_dir, config, epsilons)
    members = plan_sweep(config, epsilons, study_dir)
    todo = [(m, stage) for m in members for stage in settings.stages if not m.done(stage)]
    if estimate_s:
        total = sum(estimate_s.get(stage, 0.0) for _, stage in todo)
        print(
            f"sweep: {len(todo)} of {len(members) * len(settings.stages)} steps to do, "
            f"estimated {_duration(total)} on this machine",
            flush=True,
        )
    with tqdm(total=len(todo), unit="step", desc="sweep") as bar:
        for member, stage in todo:
            bar.set_postfix_str(f"epsilon {member.label}: {stage}")
            started = time.perf_counter()
            STAGES[stage](member, config, settings, device)
            seconds = time.perf_counter() - started
            study.append_timing({"epsilon": member.label, "stage": stage, "seconds": seconds})
            bar.update(1)
    return members


# Measured on this project's 2-core reference machine for the 32 px demo (benchmarks/history.md);
# used until the sweep has timed a stage itself.
DEFAULT_STAGE_SECONDS = {"evaluate": 600.0, "attack": 400.0}


def estimate_stage_seconds(
    config: Config, study_dir: Path, *, device: torch.device
) -> dict[str, float]:
    """Seconds per member and stage: this sweep's own timings where it has them, a short
    timed probe of the training method's work on `device`, and reference timings otherwise."""
    timed: dict[str, list[float]] = {}
    for row in StudyFolder(study_dir).read_timings():
        timed.setdefault(row["stage"], []).append(row["seconds"])
    estimate = {stage: sum(v) / len(v) for stage, v in timed.items()}
    for stage, seconds in DEFAULT_STAGE_SECONDS.items():
        estimate.setdefault(stage, seconds)
    if "train" not in estimate:
        from methods import method_for

        estimate["train"] = method_for(config).estimate_seconds(on_device(config, device))
    return estimate


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def sweep_and_report(
    config: Config,
    epsilons: tuple[float, ...],
    study_dir: Path,
    settings: SweepSettings = SweepSettings(),
    estimate: bool = True,
) -> Path:
    """Run the missing stages, then write the table, the plots and report.html."""
    from study.html_report import write_report
    from study.tradeoff import compare

    study_dir = Path(study_dir)
    settings = replace(settings, device=sweep_device(config, settings))
    estimate_s = (
        estimate_stage_seconds(config, study_dir, device=settings.device) if estimate else None
    )
    members = run_sweep(config, epsilons, study_dir, settings, estimate_s)
    rows = compare(members, study_dir)
    return write_report(rows, members, study_dir, f"{config.name}: privacy-utility sweep")
