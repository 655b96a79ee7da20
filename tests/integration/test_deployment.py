"""The same ServerApp/ClientApp under Flower's Deployment Engine on loopback."""

import json
import subprocess
import time

import pytest

from common.run_folder import RunFolder, SiteFolder
from tests.helpers.deployment import flwr_run, phantom_site_yaml, start_site, start_superlink
from tests.helpers.processes import BIN, free_port


@pytest.mark.timeout(300)
def test_superlink_and_two_supernodes_complete_two_rounds(tmp_path, processes):
    port, environment = start_superlink(
        processes, tmp_path, "loopback", "insecure = true", ["--insecure"]
    )
    for site in range(2):
        node_config = phantom_site_yaml(tmp_path, f"site-{site}", target=10.0, maximum=10.0)
        start_site(processes, tmp_path, environment, port, f"supernode{site}", node_config)
    time.sleep(3)
    run_dir = tmp_path / "run"

    run = flwr_run(
        processes,
        tmp_path,
        environment,
        "loopback",
        f'config="{tmp_path}/server.yaml" run-dir="{run_dir}"',
    )
    run.wait(timeout=240)

    folder = RunFolder(run_dir)
    assert folder.trained, (tmp_path / "flwr-run.log").read_text()[-3000:]
    summary = folder.read_summary()
    assert summary["rounds"] == 2
    assert summary["stop_reason"] == "completed 2 rounds"
    assert set(summary["epsilon_per_site"]) == {"site-0", "site-1"}
    for site in range(2):
        (ledger_file,) = SiteFolder(tmp_path / f"site-{site}-state").ledger_files()
        ledger = json.loads(ledger_file.read_text())
        assert [entry["mechanism"] for entry in ledger["entries"]] == [
            "size-estimate",
            "dp-sgd",
            "dp-sgd",
        ]
        assert sum(entry["steps"] for entry in ledger["entries"]) == 5
    assert folder.samples_image.exists()


def start_supernode(processes, tmp_path, environment, port, site, credentials):
    node_config = phantom_site_yaml(tmp_path, site, target=10.0, maximum=10.0)
    return processes.start(
        [
            str(BIN / "flower-supernode"),
            "--superlink",
            f"127.0.0.1:{port}",
            "--root-certificates",
            str(credentials / "ca.crt"),
            "--auth-supernode-private-key",
            str(credentials / "sites" / site),
            "--port",
            str(free_port()),
            "--node-config",
            node_config,
        ],
        tmp_path / f"{site}.log",
        env=environment,
        cwd=tmp_path,
    )


@pytest.mark.timeout(400)
def test_tls_federation_admits_registered_sites_only(tmp_path, processes):
    credentials = tmp_path / "credentials"
    subprocess.run(
        [str(BIN / "privsynth"), "certs", str(credentials), "--site", "site-a"]
        + ["--site", "site-b", "--site", "intruder"],
        check=True,
        capture_output=True,
    )
    port, environment = start_superlink(
        processes,
        tmp_path,
        "consortium",
        f'root-certificates = "{credentials}/ca.crt"',
        ["--enable-supernode-auth", "--ssl-ca-certfile", str(credentials / "ca.crt")]
        + ["--ssl-certfile", str(credentials / "superlink.crt")]
        + ["--ssl-keyfile", str(credentials / "superlink.key")],
    )
    time.sleep(4)
    for site in ("site-a", "site-b"):
        subprocess.run(
            [str(BIN / "flwr"), "supernode", "register", str(credentials / "sites" / f"{site}.pub")]
            + ["consortium"],
            check=True,
            capture_output=True,
            env=environment,
        )
        start_supernode(processes, tmp_path, environment, port, site, credentials)

    intruder = start_supernode(processes, tmp_path, environment, port, "intruder", credentials)
    intruder.wait(timeout=60)
    run = flwr_run(
        processes,
        tmp_path,
        environment,
        "consortium",
        f'config="{tmp_path}/server.yaml" run-dir="{tmp_path}/run"',
    )
    run.wait(timeout=240)

    assert intruder.returncode != 0
    assert "305" in (tmp_path / "intruder.log").read_text()
    folder = RunFolder(tmp_path / "run")
    assert folder.trained, (tmp_path / "flwr-run.log").read_text()[-3000:]
    summary = folder.read_summary()
    assert summary["rounds"] == 2
    assert set(summary["epsilon_per_site"]) == {"site-a", "site-b"}
