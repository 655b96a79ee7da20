"""`privsynth sweep`: train, evaluate and attack one federation per epsilon; compare them."""

import argparse
from pathlib import Path

from common.config import DEVICES, load_config
from common.errors import UserError
from common.run_folder import StudyFolder


def add_parser(commands) -> None:
    sweep = commands.add_parser(
        "sweep", help="train, evaluate and attack one federation per epsilon; compare them"
    )
    sweep.add_argument("config", help="preset name (configs/) or YAML path")
    sweep.add_argument("--epsilons", default="1,3,10,inf", help="per-site epsilons (inf = no DP)")
    sweep.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    sweep.add_argument("--study-dir", help="output folder (default: output.dir/sweep-NAME)")
    sweep.add_argument("--epochs", type=int, default=3, help="evaluation classifier epochs")
    sweep.add_argument(
        "--attack-members", type=int, default=0, help="members attacked (0 = as many as holdout)"
    )
    sweep.add_argument(
        "--device",
        choices=DEVICES,
        help="where every run trains, is evaluated and attacked (default: runtime.device)",
    )
    sweep.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from attacks.context import AttackOptions
    from common.device import resolve_device
    from evaluation.evaluate import EvaluationSettings
    from evaluation.training import TrainingSettings
    from study.sweep import SweepSettings, parse_epsilons, sweep_and_report

    config = load_config(args.config, args.set)
    epsilons = parse_epsilons(args.epsilons)
    study = StudyFolder(args.study_dir or Path(config.output.dir) / f"sweep-{config.name}")
    if args.epochs < 1 or args.attack_members < 0:
        raise UserError("--epochs must be >= 1 and --attack-members >= 0")
    # A missing GPU is said before anything starts.
    if args.device:
        device = resolve_device(args.device, key="--device")
    else:
        device = resolve_device(config.runtime.device)
    settings = SweepSettings(
        evaluation=EvaluationSettings(training=TrainingSettings(epochs=args.epochs)),
        attacks=AttackOptions(members=args.attack_members),
        device=device,
    )
    print(f"study folder: {study.path}", flush=True)
    report = sweep_and_report(config, epsilons, study.path, settings)
    print(study.table_markdown.read_text())
    print(f"report: {report}")
    return 0
