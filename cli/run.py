"""`privsynth run`: train a simulated federation on one machine (or print its plan)."""

import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from common.config import Config, config_to_yaml, load_config
from common.device import resolve_device
from common.errors import UserError
from common.run_folder import RunFolder, site_name


def add_parser(commands) -> None:
    run = commands.add_parser("run", help="train a simulated federation on one machine")
    run.add_argument("config", nargs="?", help="preset name (configs/) or YAML path")
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    run.add_argument("--dry-run", action="store_true", help="print the plan and noise, then exit")
    run.add_argument("--run-dir", help="output folder (default: output.dir/NAME-TIMESTAMP)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    run.set_defaults(handler=cmd_run)


def _default_run_dir(config: Config) -> Path:
    return Path(config.output.dir) / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def describe_prior(config: Config) -> str:
    """The prior the run starts from, checked against the config, or that it has none."""
    if not config.model.prior:
        return "prior: none (model.prior is ''): the models start from random weights"
    from common.prior.file import load_prior

    prior = load_prior(config.model.prior, config)
    public = prior.provenance.get("public_data", {})
    return (
        f"prior: {prior.folder} (sha256 {prior.sha256}), trained on public "
        f"{public.get('file')} ({public.get('licence')}): no epsilon"
    )


def print_plan(config: Config) -> None:
    from common.data.federation import plan_federation
    from methods import method_for

    prior = describe_prior(config)  # a missing or unfit prior is said before the data is read
    plan = plan_federation(config)
    federation = config.federation
    method = method_for(config)
    planned = method.describe(method.schedule(config))
    print(config_to_yaml(config))
    print(prior)
    untrained = sum(len(indices) for indices in plan.untrained)
    print(
        f"data: {len(plan.data)} images, holdout {len(plan.holdout)}, untrained {untrained} "
        f"(data.untrained_fraction {config.data.untrained_fraction:g}: of each site's images, "
        "whole patients no site trains on, the attacks' negative control), "
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
            f"{site_name(site)}: {len(data)} images ({len(plan.untrained[site])} more kept "
            f"untrained), {units} {config.privacy.unit}s, sample "
            f"rate {noise.sample_rate:.4f}, target epsilon {eps}, delta {budget.delta:g} -> "
            f"noise multiplier {noise.noise_multiplier:.4f}"
        )


def resumed_config(run: RunFolder) -> Config:
    """The run's config; a run planned before sites kept an untrained share goes on without
    one (data.untrained_fraction 0, written back), so its sites train on what its split
    records."""
    config = run.read_config()
    if "untrained" in run.read_split() or config.data.untrained_fraction == 0:
        return config
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, untrained_fraction=0.0)
    )
    run.write_config(config)
    return config


def cmd_run(args: argparse.Namespace) -> int:
    from server.simulation import simulate

    if args.resume:
        run = RunFolder(args.resume)
        if not run.started:
            raise UserError(
                f"--resume {run.path}: no {run.config_file.name} there; is it a run folder?"
            )
        if args.set:
            raise UserError("--resume continues a run with its own config; --set is not allowed")
        config = resumed_config(run)
    else:
        if not args.config:
            raise UserError("give a config (a preset name like quickstart, or a YAML path)")
        config = load_config(args.config, args.set)
    if args.dry_run:
        print_plan(config)
        return 0
    resolve_device(config.runtime.device)  # a missing GPU is said before anything starts
    if config.model.prior:  # and so is a missing or unfit prior
        print(describe_prior(config), flush=True)
    run = RunFolder(args.resume or args.run_dir or _default_run_dir(config))
    if not args.resume and run.started:
        raise UserError(
            f"{run.path} already holds a run; continue it with --resume {run.path} "
            "or choose another --run-dir"
        )
    print(f"run folder: {run.path}", flush=True)
    started = time.perf_counter()
    try:
        summary = simulate(config, run.path, resume=bool(args.resume))
    except KeyboardInterrupt:
        print(f"privsynth: interrupted; continue with: privsynth run --resume {run.path}")
        return 130
    wall = time.perf_counter() - started
    print(f"\nrun folder: {run.path}")
    print(f"stopped: {summary['stop_reason']} after {summary['rounds']} rounds, {wall:.0f}s")
    for site, eps in summary["epsilon_per_site"].items():
        print(f"  {site}: epsilon {eps:.3f} (delta {summary['delta_per_site'][site]:g})")
    print(f"sample grid: {run.samples_image}")
    return 0
