"""Flower's Deployment Engine on loopback: a SuperLink, SuperNodes for phantom sites, and
`flwr run` of this repository's app, as real processes (see processes.Processes)."""

from pathlib import Path

from tests.helpers.datasets import write_phantom_site
from tests.helpers.processes import BIN, REPO, env, free_port, wait_for_port
from tests.helpers.sites import node_config_option, write_site_yaml

SITE_CLASSES = ["opacity", "cardiomegaly", "effusion", "nodule"]

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


def phantom_site_yaml(tmp_path: Path, name: str, target: float = 3.0, maximum: float = 3.0) -> str:
    """Writes site `name`'s data and a complete site.yaml; returns its --node-config."""
    data_path = tmp_path / f"{name}.npz"
    write_phantom_site(data_path, seed=len(name) + ord(name[-1]))
    node_config = write_site_yaml(
        tmp_path,
        file_name=f"{name}.yaml",
        name=name,
        state_dir=tmp_path / f"{name}-state",
        data={
            "path": data_path,
            "format": "medmnist",
            "options": {"class_names": SITE_CLASSES, "multi_label": True},
        },
        privacy={
            "target_epsilon": target,
            "max_epsilon": maximum,
            "delta": 1.0e-5,
            "unit": "image",
            "accountant": "rdp",
        },
    )
    return node_config_option(node_config)


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
