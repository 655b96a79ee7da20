"""`privsynth attack`: the privacy attack suite on a finished run."""

import argparse
from pathlib import Path

from common.config import DEVICES
from common.errors import UserError
from common.run_folder import RunFolder


def add_parser(commands) -> None:
    attack = commands.add_parser(
        "attack", help="run the privacy attack suite on a finished run; writes attacks.md"
    )
    attack.add_argument("run_dir", help="a finished `privsynth run` folder")
    attack.add_argument("--only", help="comma-separated attack names (default: all)")
    attack.add_argument(
        "--members", type=int, default=0, help="evaluate at most N members and N non-members"
    )
    attack.add_argument(
        "--audit-steps", type=int, default=500, help="DP audit training steps (0 = the run's)"
    )
    attack.add_argument("--audit-canaries", type=int, default=500, help="DP audit canaries")
    attack.add_argument("--seed", type=int, default=0, help="seed of the attacks' sampling")
    attack.add_argument(
        "--cache-dir", help="where trained embedding networks are kept (RUN_DIR/../.cache/attacks)"
    )
    attack.add_argument(
        "--device",
        choices=DEVICES,
        help="where the attacks' networks train and run (default: the run's runtime.device)",
    )
    attack.set_defaults(handler=cmd_attack)


def cmd_attack(args: argparse.Namespace) -> int:
    from attacks.context import AttackOptions
    from attacks.registry import ATTACKS
    from attacks.suite import run_attacks
    from common.device import resolve_device

    names = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    for name in names or []:
        ATTACKS.get(name)  # an unknown name stops here with the valid choices
    for flag in ("members", "audit_steps", "audit_canaries"):
        if getattr(args, flag) < 0:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 0")
    options = AttackOptions(
        members=args.members,
        seed=args.seed,
        audit_steps=args.audit_steps,
        audit_canaries=args.audit_canaries,
    )
    run = RunFolder(args.run_dir)
    # Said before any data is read; --device is what overrides the run's own setting here.
    device = resolve_device(args.device or run.read_config().runtime.device, key="--device")
    cache_dir = Path(args.cache_dir) if args.cache_dir else run.cache("attacks")
    report = run_attacks(run.path, names, options, cache_dir, device=device)
    for threat_model, text in report["verdicts"].items():
        print(f"{threat_model}: {text}\n")
    print(f"report: {run.attacks_report} (numbers: {run.attacks_file.name})")
    return 0
