"""Run a whole federation on one machine with Flower's simulation engine (Ray backend)."""

import logging
import os
from pathlib import Path

import torch

from common.config import Config
from common.data.federation import plan_federation
from common.run_folder import RunFolder
from common.run_lock import run_folder_lock


def simulate(config: Config, run_dir: Path, resume: bool = False) -> dict:
    """Train the federation; returns the run summary (also in run_dir/summary.json)."""
    # Imported here: Flower and Ray are slow to import and not needed for --dry-run.
    from flwr.simulation import run_simulation

    from client.app import app as client_app
    from server.app import build_server_app

    os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    run_dir = Path(run_dir).resolve()
    folder = RunFolder(run_dir)
    with run_folder_lock(run_dir):
        if not resume:
            folder.write_config(config)
            folder.write_split(plan_federation(config).to_dict())
        sites = config.federation.num_sites
        gpus = 1.0 / sites if torch.cuda.is_available() else 0.0
        cores = max(1, os.cpu_count() or 1)
        cpus = config.runtime.cpus_per_site or min(1.0, cores / sites)
        # Flower logs a deprecation notice for run_simulation; `flwr run .` is the other way in.
        logging.getLogger("flwr").setLevel(logging.ERROR)
        run_simulation(
            server_app=build_server_app(
                {"config": str(folder.config_file), "run-dir": str(run_dir), "resume": resume}
            ),
            client_app=client_app,
            num_supernodes=sites,
            backend_config={
                "client_resources": {"num_cpus": cpus, "num_gpus": gpus},
                "init_args": {
                    "num_cpus": cores,
                    "include_dashboard": False,
                    "logging_level": "error",
                    "log_to_driver": True,
                },
            },
        )
        if not folder.trained:
            raise RuntimeError(f"the simulation ended without writing {folder.summary_file}")
        return folder.read_summary()
