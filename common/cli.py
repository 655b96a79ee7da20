"""The `privsynth` command."""

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from common.config import Config, config_to_yaml, load_config
from common.errors import UserError
from evaluation.command import add_evaluate_arguments, run_evaluate


def _default_run_dir(config: Config) -> Path:
    return Path(config.output.dir) / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _print_plan(config: Config) -> None:
    from common.data.federation import plan_federation
    from methods import method_for

    plan = plan_federation(config)
    federation = config.federation
    method = method_for(config)
    planned = method.describe(method.schedule(config))
    print(config_to_yaml(config))
    print(
        f"data: {len(plan.data)} images, holdout {len(plan.holdout)}, "
        f"{federation.num_sites} sites ({federation.partition}), {planned} planned per site"
    )
    for site in range(federation.num_sites):
        data = plan.site_data(site)
        keys = data.patient_keys() if config.privacy.unit == "patient" else np.arange(len(data))
        units = len(np.unique(keys))
        budget = config.site_budget(site)
        noise = method.plan_noise(config, units=units, budget=budget)
        eps = (
            "inf (non-private)"
            if math.isinf(budget.target_epsilon)
            else f"{budget.target_epsilon:g}"
        )
        print(
            f"site-{site}: {len(data)} images, {units} {config.privacy.unit}s, sample rate "
            f"{noise.sample_rate:.4f}, target epsilon {eps}, delta {budget.delta:g} -> noise "
            f"multiplier {noise.noise_multiplier:.4f}"
        )


def cmd_run(args: argparse.Namespace) -> int:
    from server.simulation import simulate

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").exists():
            raise UserError(f"--resume {run_dir}: no config.yaml there; is it a run folder?")
        if args.set:
            raise UserError("--resume continues a run with its own config; --set is not allowed")
        config = load_config(str(run_dir / "config.yaml"))
    else:
        if not args.config:
            raise UserError("give a config (a preset name like quickstart, or a YAML path)")
        config = load_config(args.config, args.set)
    if args.dry_run:
        _print_plan(config)
        return 0
    run_dir = Path(args.resume) if args.resume else Path(args.run_dir or _default_run_dir(config))
    if not args.resume and (run_dir / "config.yaml").exists():
        raise UserError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir} "
            "or choose another --run-dir"
        )
    print(f"run folder: {run_dir}", flush=True)
    started = time.perf_counter()
    try:
        summary = simulate(config, run_dir, resume=bool(args.resume))
    except KeyboardInterrupt:
        print(f"privsynth: interrupted; continue with: privsynth run --resume {run_dir}")
        return 130
    wall = time.perf_counter() - started
    print(f"\nrun folder: {run_dir}")
    print(f"stopped: {summary['stop_reason']} after {summary['rounds']} rounds, {wall:.0f}s")
    for site, eps in summary["epsilon_per_site"].items():
        print(f"  {site}: epsilon {eps:.3f} (delta {summary['delta_per_site'][site]:g})")
    print(f"sample grid: {run_dir / 'samples.png'}")
    return 0


def _ledger_files(site_dir: Path) -> list[Path]:
    """A simulated site's ledger.json, or a deployed site's one ledger per dataset."""
    if site_dir.is_file():
        return [site_dir]
    found = sorted(site_dir.glob("ledger.json")) + sorted(site_dir.glob("ledgers/*.json"))
    if not found:
        raise UserError(
            f"no privacy ledger in {site_dir} (ledger.json or ledgers/*.json); give a site's "
            "state directory"
        )
    return found


def cmd_ledger(args: argparse.Namespace) -> int:
    from common.privacy.accounting import epsilon_spent
    from common.privacy.ledger import PrivacyLedger

    for number, path in enumerate(_ledger_files(Path(args.site_dir))):
        ledger = PrivacyLedger.open(path, **PrivacyLedger.read_settings(path))
        print(("\n" if number else "") + f"privacy ledger {path}")
        print(f"(unit {ledger.unit}, delta {ledger.delta:g}, accountant {ledger.accountant})")
        print(
            f"{'round':>6} {'mechanism':<13} {'steps':>7} {'noise':>8} {'rate':>8} "
            f"{'epsilon':>9}  recorded"
        )
        history = []
        for entry in ledger.entries:
            history.append((entry.noise_multiplier, entry.sample_rate, entry.steps))
            epsilon = epsilon_spent(history, ledger.delta, ledger.accountant)
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time))
            print(
                f"{entry.round:>6} {entry.mechanism:<13} {entry.steps:>7} "
                f"{entry.noise_multiplier:>8.4f} "
                f"{entry.sample_rate:>8.4f} {epsilon:>9.3f}  {when}"
            )
        print(f"total: {ledger.steps} DP-SGD steps, epsilon {ledger.epsilon():.3f}")
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    from common.certs import write_consortium_credentials

    out_dir = Path(args.out_dir)
    if (out_dir / "ca.key").exists():
        raise UserError(f"{out_dir} already holds a CA; choose another folder or move it away")
    hosts = args.host or ["127.0.0.1", "localhost"]
    sites = args.site or [f"site-{i}" for i in range(args.sites)]
    for path in write_consortium_credentials(out_dir, hosts, sites, args.days):
        print(path)
    print(
        "keep ca.key and superlink.key on the coordinator; give each site its private key "
        "(sites/NAME) and ca.crt; register sites/NAME.pub with `flwr supernode register`"
    )
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    from attacks.context import AttackOptions
    from attacks.registry import ATTACKS
    from attacks.suite import run_attacks

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
    cache_dir = Path(args.cache_dir or Path(args.run_dir).parent / ".cache" / "attacks")
    report = run_attacks(Path(args.run_dir), names, options, cache_dir)
    for threat_model, text in report["verdicts"].items():
        print(f"{threat_model}: {text}\n")
    print(f"report: {Path(args.run_dir) / 'attacks.md'} (numbers: attacks.json)")
    return 0


def cmd_phantom(args: argparse.Namespace) -> int:
    from common.data.medmnist import write_medmnist
    from common.data.phantom import PhantomOptions, generate_phantom

    out = Path(args.out)
    if out.suffix != ".npz":
        raise UserError(f"{out}: give a path ending in .npz")
    data = generate_phantom(
        PhantomOptions(
            num_patients=args.patients, images_per_patient=args.images_per_patient, seed=args.seed
        ),
        args.resolution,
    )
    write_medmnist(data, out)
    print(f"{out}: {len(data)} phantom chest X-rays of {args.patients} patients")
    return 0


def cmd_reader_study(args: argparse.Namespace) -> int:
    from study.reader import create_study, open_study, score
    from study.reader_server import serve

    if args.score:
        result = score(open_study(Path(args.run_dir)))
        print(f"{'reader':<20} {'answered':>8} {'correct':>7} {'accuracy':>8} {'p (binomial)':>12}")
        for reader, row in [*result["readers"].items(), ("(all readers)", result["pooled"])]:
            accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
            print(
                f"{reader:<20} {row['answered']:>8} {row['correct']:>7} {accuracy:>8} "
                f"{row['p_value']:>12.4g}"
            )
        print("p: two-sided exact binomial test against guessing (accuracy 0.5)")
        print(f"scores: {Path(args.run_dir) / 'reader-study' / 'scores.json'}")
        return 0
    study = create_study(Path(args.run_dir), args.images, args.seed)
    server = serve(study, args.port)
    print(f"reader study of {len(study.images)} images: http://127.0.0.1:{server.server_port}/")
    print("answers are saved as they are given; Ctrl-C stops the server", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from study.sweep import SweepSettings, parse_epsilons, sweep_and_report

    config = load_config(args.config, args.set)
    epsilons = parse_epsilons(args.epsilons)
    study_dir = Path(args.study_dir or Path(config.output.dir) / f"sweep-{config.name}")
    if args.epochs < 1 or args.attack_members < 0:
        raise UserError("--epochs must be >= 1 and --attack-members >= 0")
    from attacks.context import AttackOptions
    from evaluation.evaluate import EvaluationSettings
    from evaluation.training import TrainingSettings

    settings = SweepSettings(
        evaluation=EvaluationSettings(training=TrainingSettings(epochs=args.epochs)),
        attacks=AttackOptions(members=args.attack_members),
    )
    print(f"study folder: {study_dir}", flush=True)
    report = sweep_and_report(config, epsilons, study_dir, settings)
    print((study_dir / "table.md").read_text())
    print(f"report: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="privsynth",
        description="Federated differentially private synthetic medical images.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train a simulated federation on one machine")
    run.add_argument("config", nargs="?", help="preset name (configs/) or YAML path")
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    run.add_argument("--dry-run", action="store_true", help="print the plan and noise, then exit")
    run.add_argument("--run-dir", help="output folder (default: output.dir/NAME-TIMESTAMP)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    run.set_defaults(handler=cmd_run)
    ledger = commands.add_parser("ledger", help="print a site's privacy spending history")
    ledger.add_argument(
        "site_dir", help="a site's state directory (ledger.json or ledgers/) or a ledger file"
    )
    ledger.set_defaults(handler=cmd_ledger)
    certs = commands.add_parser(
        "certs", help="create a CA, the SuperLink's TLS certificate and site keys"
    )
    certs.add_argument("out_dir", help="folder to write into (must not hold a CA yet)")
    certs.add_argument(
        "--host",
        action="append",
        help="address sites use for the SuperLink (repeatable; default 127.0.0.1 and localhost)",
    )
    certs.add_argument("--site", action="append", help="a site name (repeatable)")
    certs.add_argument("--sites", type=int, default=3, help="number of sites without --site")
    certs.add_argument("--days", type=int, default=365, help="validity in days")
    certs.set_defaults(handler=cmd_certs)
    phantom = commands.add_parser(
        "phantom", help="write phantom chest X-rays as a site's .npz (to try a deployment)"
    )
    phantom.add_argument("out", help="the .npz file to write (MedMNIST layout)")
    phantom.add_argument("--patients", type=int, default=100)
    phantom.add_argument("--images-per-patient", type=int, default=4)
    phantom.add_argument("--seed", type=int, default=0, help="different per site")
    phantom.add_argument("--resolution", type=int, default=32, choices=(28, 32, 64, 128))
    phantom.set_defaults(handler=cmd_phantom)
    reader = commands.add_parser(
        "reader-study", help="real-or-synthetic reader study in the browser (loopback only)"
    )
    reader.add_argument("run_dir", help="a finished run folder")
    reader.add_argument("--images", type=int, default=50, help="half real, half synthetic")
    reader.add_argument("--port", type=int, default=8765, help="0 = any free port")
    reader.add_argument("--seed", type=int, default=0, help="which images are drawn")
    reader.add_argument("--score", action="store_true", help="score the answers and exit")
    reader.set_defaults(handler=cmd_reader_study)
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
    sweep.set_defaults(handler=cmd_sweep)
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
    attack.set_defaults(handler=cmd_attack)
    evaluate = commands.add_parser(
        "evaluate", help="judge a run's synthetic images against its real holdout"
    )
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(handler=run_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as error:
        print(f"privsynth: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("privsynth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped early (e.g. `| head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
