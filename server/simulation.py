"""Run a whole federation on one machine with Flower's simulation runtime (Ray backend)."""

import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from common.config import Config
from common.data.federation import plan_federation
from common.device import resolve_device
from common.errors import UserError
from common.prior.file import resolve_prior_path
from common.run_folder import RunFolder
from common.run_lock import run_folder_lock
from server.simulation_runtime import SimulationRuntime


def concurrent_sites(config: Config, *, cores: int, gpus: int) -> int:
    """How many sites train at once: one per `runtime.cpus_per_site` cores (by default
    `runtime.threads_per_site`, the threads a site's torch uses) on a CPU, and
    `runtime.sites_per_gpu` per GPU on GPUs."""
    runtime = config.runtime
    if resolve_device(runtime.device).type == "cuda":
        wanted = runtime.sites_per_gpu * max(1, gpus)
    else:
        wanted = int(cores // (runtime.cpus_per_site or runtime.threads_per_site))
    return max(1, min(wanted, config.federation.num_sites))


def federation_config(config: Config, *, cores: int, gpus: int) -> dict:
    """Flower's simulation settings for `config` on a machine with `cores` and `gpus`.

    Each Ray actor runs one site at a time and the sites take turns, so memory grows with the
    sites that train at once, not with the sites. Ray counts resources, it does not enforce
    them: one "CPU" per actor and as many as there are to be actors sets that number exactly.
    """
    actors = concurrent_sites(config, cores=cores, gpus=gpus)
    on_gpu = resolve_device(config.runtime.device).type == "cuda"
    return {
        "num-supernodes": config.federation.num_sites,
        "client-resources-num-cpus": 1,
        "client-resources-num-gpus": 1.0 / config.runtime.sites_per_gpu if on_gpu else 0.0,
        "init-args-num-cpus": actors,
        "init-args-num-gpus": gpus if on_gpu else 0,
        "init-args-log-to-driver": True,
    }


def simulate(config: Config, run_dir: Path, resume: bool = False) -> dict:
    """Train the federation; returns the run summary (also in run_dir/summary.json)."""
    run_dir = Path(run_dir).resolve()
    folder = RunFolder(run_dir)
    if config.model.prior:
        # Flower runs the app from a copy of its code, without priors/: a prior named by
        # its folder under priors/ is passed on by its full path.
        prior = str(resolve_prior_path(config.model.prior))
        config = replace(config, model=replace(config.model, prior=prior))
    settings = federation_config(
        config, cores=max(1, os.cpu_count() or 1), gpus=torch.cuda.device_count()
    )
    # The lock only guards the writes here: the ServerApp, in Flower's process, takes it for
    # the training itself.
    with run_folder_lock(run_dir):
        if not resume:
            folder.write_config(config)
            folder.write_split(plan_federation(config).to_dict())
        folder.clear_error()
    with SimulationRuntime(folder.logs_dir) as runtime:
        runtime.run(
            run_config={
                "config": str(folder.config_file),
                "run-dir": str(run_dir),
                "resume": resume,
            },
            federation_config=settings,
            echo=sys.stdout,
        )
    if not folder.trained:
        error = folder.read_error()
        if error:
            raise UserError(error)
        raise RuntimeError(
            f"the simulation ended without writing {folder.summary_file}; "
            f"Flower's log: {folder.logs_dir / 'flwr-run.log'}"
        )
    return folder.read_summary()
