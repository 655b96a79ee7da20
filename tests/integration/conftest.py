"""Helpers for tests that run real processes (Flower SuperLink/SuperNodes, the CLI)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.data.medmnist import write_medmnist
from common.data.phantom import PhantomOptions, generate_phantom

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Processes:
    """Background processes, each in its own session so their children die with them."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, args: list[str], log: Path, **kwargs) -> subprocess.Popen:
        handle = open(log, "w")
        process = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def processes():
    running = Processes()
    yield running
    running.stop_all()


def write_phantom_site(path: Path, seed: int, patients: int = 20) -> None:
    """A site's private data as a MedMNIST-layout .npz with patient IDs."""
    options = PhantomOptions(num_patients=patients, images_per_patient=2, seed=seed)
    write_medmnist(generate_phantom(options, 28), path)


SITE_CLASSES = "[opacity, cardiomegaly, effusion, nodule]"


def site_yaml(tmp_path: Path, name: str, target: float = 3.0, maximum: float = 3.0) -> str:
    """Writes site `name`'s data and a complete site.yaml; returns its --node-config."""
    write_phantom_site(tmp_path / f"{name}.npz", seed=len(name) + ord(name[-1]))
    (tmp_path / f"{name}.yaml").write_text(
        f"name: {name}\nstate_dir: {tmp_path / (name + '-state')}\n"
        f"data: {{path: {tmp_path / (name + '.npz')}, format: medmnist, "
        f"options: {{class_names: {SITE_CLASSES}, multi_label: true}}}}\n"
        f"privacy: {{target_epsilon: {target}, max_epsilon: {maximum}, delta: 1.0e-5, "
        "unit: image, accountant: rdp}\n"
    )
    return f'site-config="{tmp_path / (name + ".yaml")}"'


SERVER_CONFIG = """
name: deployment-test
data:
  source: medmnist
  resolution: 28
  holdout_fraction: 0.2
  medmnist:
    path: only-the-sites-have-data.npz
    class_names: [opacity, cardiomegaly, effusion, nodule]  # SITE_CLASSES
    multi_label: true
model: {latent_dim: 8, generator_width: 8, discriminator_width: 8}
training: {batch_size: 8}
federation: {num_sites: 2, rounds: 2, local_steps: 2}
output: {samples_per_class: 4, grid_columns: 4}
"""


def start_superlink(processes, tmp_path, connection, security, superlink_args):
    """A SuperLink on a free loopback port, the `flwr` connection to it, the server config.

    Returns the port and the environment (FLWR_HOME) the other Flower commands need.
    """
    port = free_port()
    flwr_home = tmp_path / "flwr"
    flwr_home.mkdir()
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "{connection}"\n\n[superlink.{connection}]\n'
        f'address = "127.0.0.1:{port}"\n{security}\n'
    )
    (tmp_path / "server.yaml").write_text(SERVER_CONFIG)
    environment = env(FLWR_HOME=str(flwr_home))
    launch_superlink(processes, tmp_path, environment, port, superlink_args)
    return port, environment


def launch_superlink(processes, tmp_path, environment, port, superlink_args, log="superlink"):
    process = processes.start(
        [str(BIN / "flower-superlink"), "--port", str(port), *superlink_args],
        tmp_path / f"{log}.log",
        env=environment,
        cwd=tmp_path,
    )
    wait_for_port(process, port)
    return process


def wait_for_port(process: subprocess.Popen, port: int, timeout_s: float = 120) -> None:
    """Until `process` listens on `port` (or exits): `flwr run` does not retry a SuperLink
    that is still starting, which takes a while on a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"nothing listens on port {port} after {timeout_s:.0f}s"
                ) from None
            time.sleep(0.2)


def start_site(processes, tmp_path, environment, port, name, node_config):
    """An insecure SuperNode for site `name` with the given --node-config string."""
    return processes.start(
        [str(BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}"]
        + ["--port", str(free_port()), "--node-config", node_config],
        tmp_path / f"{name}.log",
        env=environment,
        cwd=tmp_path,
    )


def flwr_run(processes, tmp_path, environment, connection, run_config, log_name="flwr-run"):
    """`flwr run` of this repository's app against `connection`, streaming its log."""
    return processes.start(
        [str(BIN / "flwr"), "run", str(REPO), connection, "--stream", "--run-config", run_config],
        tmp_path / f"{log_name}.log",
        env=environment,
    )
