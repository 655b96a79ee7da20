"""The same ServerApp/ClientApp under Flower's Deployment Engine on loopback."""

import json
import time

import pytest

from tests.integration.conftest import BIN, REPO, env, free_port, write_phantom_site

SERVER_CONFIG = """
name: deployment-test
data:
  source: medmnist
  resolution: 28
  holdout_fraction: 0.2
  medmnist:
    path: only-the-sites-have-data.npz
    class_names: [opacity, cardiomegaly, effusion, nodule]
    multi_label: true
model: {latent_dim: 8, generator_width: 8, discriminator_width: 8}
training: {batch_size: 8}
federation: {num_sites: 2, rounds: 2, local_steps: 2}
output: {samples_per_class: 4, grid_columns: 4}
"""


@pytest.mark.timeout(300)
def test_superlink_and_two_supernodes_complete_two_rounds(tmp_path, processes):
    port = free_port()
    flwr_home = tmp_path / "flwr"
    flwr_home.mkdir()
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "loopback"\n\n'
        f'[superlink.loopback]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    (tmp_path / "server.yaml").write_text(SERVER_CONFIG)
    environment = env(FLWR_HOME=str(flwr_home))
    processes.start(
        [str(BIN / "flower-superlink"), "--insecure", "--port", str(port)],
        tmp_path / "superlink.log",
        env=environment,
        cwd=tmp_path,
    )
    for site in range(2):
        write_phantom_site(tmp_path / f"site{site}.npz", seed=site)
        node_config = (
            f'data-path="{tmp_path}/site{site}.npz" site-name="site-{site}" '
            f'state-dir="{tmp_path}/state{site}"'
        )
        processes.start(
            [
                str(BIN / "flower-supernode"),
                "--insecure",
                "--superlink",
                f"127.0.0.1:{port}",
                "--port",
                str(free_port()),
                "--node-config",
                node_config,
            ],
            tmp_path / f"supernode{site}.log",
            env=environment,
            cwd=tmp_path,
        )
    time.sleep(3)
    run_dir = tmp_path / "run"

    run = processes.start(
        [
            str(BIN / "flwr"),
            "run",
            str(REPO),
            "loopback",
            "--stream",
            "--run-config",
            f'config="{tmp_path}/server.yaml" run-dir="{run_dir}"',
        ],
        tmp_path / "flwr-run.log",
        env=environment,
    )
    run.wait(timeout=240)

    summary_path = run_dir / "summary.json"
    assert summary_path.exists(), (tmp_path / "flwr-run.log").read_text()[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["rounds"] == 2
    assert summary["stop_reason"] == "completed 2 rounds"
    assert set(summary["epsilon_per_site"]) == {"site-0", "site-1"}
    for site in range(2):
        ledger = json.loads((tmp_path / f"state{site}" / "ledger.json").read_text())
        assert sum(entry["steps"] for entry in ledger["entries"]) == 4
    assert (run_dir / "samples.png").exists()
