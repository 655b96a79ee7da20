"""Failures under the Deployment Engine on loopback: lost sites, spent budgets, a lost server.

Real SuperLink, SuperNodes and `flwr run` as subprocesses; every wait is bounded.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from common.protocol import ERROR_REASONS, SiteError
from common.run_folder import RunFolder, SiteFolder
from tests.helpers.deployment import (
    flwr_run,
    launch_superlink,
    phantom_site_yaml,
    start_site,
    start_superlink,
)
from tests.helpers.processes import BIN


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.5)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants, even those in other sessions (the
    SuperLink starts its ServerApp process in its own session)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, index = [pid], 0
    while index < len(tree):
        tree += children.get(tree[index], [])
        index += 1
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stats(run_dir) -> list[dict]:
    return RunFolder(run_dir).read_stats()


def ledger_steps(state_dir) -> int:
    (ledger,) = SiteFolder(state_dir).ledger_files()
    entries = json.loads(ledger.read_text())["entries"]
    return sum(entry["steps"] for entry in entries if entry["mechanism"] == "dp-sgd")


def finish(run, tmp_path, log: str, run_dir) -> dict:
    run.wait(timeout=300)
    folder = RunFolder(run_dir)
    assert folder.trained, (tmp_path / f"{log}.log").read_text()[-3000:]
    return folder.read_summary()


@pytest.mark.timeout(600)
def test_lost_site_spent_budget_and_restarted_site(tmp_path, processes):
    port, environment = start_superlink(
        processes, tmp_path, "loopback", "insecure = true", ["--insecure"]
    )
    node_configs = {
        "site-a": phantom_site_yaml(tmp_path, "site-a", target=2, maximum=2),
        "site-b": phantom_site_yaml(tmp_path, "site-b", target=2, maximum=50),
        "site-c": phantom_site_yaml(tmp_path, "site-c", target=2, maximum=50),
    }
    nodes = {
        name: start_site(processes, tmp_path, environment, port, name, config)
        for name, config in node_configs.items()
    }
    first_dir = tmp_path / "run-1"
    # 60 s: under load the two live sites' round can take longer than 30 s, and then round 2
    # fails for want of min_sites instead of for the killed site alone.
    overrides = "federation.num_sites=3;federation.min_sites=2;federation.round_timeout_s=60"

    # Run 1: site-c is killed while round 2 is under way; the others finish the run.
    run = flwr_run(
        processes,
        tmp_path,
        environment,
        "loopback",
        f'config="{tmp_path}/server.yaml" run-dir="{first_dir}" overrides="{overrides}"',
        "run-1",
    )
    wait_until(lambda: len(stats(first_dir)) >= 1, 240, "round 1")
    os.killpg(nodes["site-c"].pid, signal.SIGKILL)
    first = finish(run, tmp_path, "run-1", first_dir)

    assert first["rounds"] == 2
    assert first["stop_reason"] == "completed 2 rounds"
    round_two = stats(first_dir)[1]
    assert set(round_two["sites"]) == {"site-a", "site-b"}
    assert len(round_two["failures"]) == 1
    assert ledger_steps(tmp_path / "site-b-state") == 4

    # Run 2, after site-b's SuperNode restarts: site-a's maximum is spent, so it refuses;
    # site-b continues the ledger of its dataset.
    os.killpg(nodes["site-b"].pid, signal.SIGTERM)
    nodes["site-b"].wait(timeout=30)
    start_site(processes, tmp_path, environment, port, "site-b-again", node_configs["site-b"])
    second_dir = tmp_path / "run-2"
    overrides = "federation.num_sites=2;federation.min_sites=1;federation.round_timeout_s=30"
    run = flwr_run(
        processes,
        tmp_path,
        environment,
        "loopback",
        f'config="{tmp_path}/server.yaml" run-dir="{second_dir}" overrides="{overrides}"',
        "run-2",
    )
    second = finish(run, tmp_path, "run-2", second_dir)

    # The failures also list the SuperNodes that were stopped (unavailable or timed out).
    refusals = [f["reason"] for row in stats(second_dir) for f in row["failures"] if f["refused"]]
    assert len(refusals) == 2
    assert refusals[0] == f"{ERROR_REASONS[SiteError.REFUSED_BUDGET]} (code 4101)"
    # The details are in site-a's own log, not at the server.
    site_log = SiteFolder(tmp_path / "site-a-state").log.read_text()
    assert "site-a refuses round 1" in site_log and "above its maximum 2" in site_log
    assert ledger_steps(tmp_path / "site-a-state") == 4
    assert ledger_steps(tmp_path / "site-b-state") == 8
    assert second["epsilon_per_site"]["site-b"] > first["epsilon_per_site"]["site-b"]
    history = subprocess.run(
        [str(BIN / "privsynth"), "ledger", str(tmp_path / "site-b-state")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "total: 8 DP-SGD steps" in history


@pytest.mark.timeout(600)
def test_server_killed_mid_run_resumes_with_the_same_rounds_and_epsilon(tmp_path, processes):
    # The SuperLink keeps its state (nodes, runs) in a database file, so that the SuperNodes
    # are still known after it restarts.
    superlink_args = ["--insecure", "--database", str(tmp_path / "superlink.db")]
    port, environment = start_superlink(
        processes, tmp_path, "loopback", "insecure = true", superlink_args
    )
    for name in ("site-a", "site-b"):
        config = phantom_site_yaml(tmp_path, name, target=3, maximum=3)
        start_site(processes, tmp_path, environment, port, name, config)
    run_dir = tmp_path / "run"
    settings = f'config="{tmp_path}/server.yaml" run-dir="{run_dir}"'
    overrides = 'overrides="federation.rounds=3"'

    run = flwr_run(processes, tmp_path, environment, "loopback", f"{settings} {overrides}")
    wait_until(lambda: len(stats(run_dir)) >= 1, 240, "round 1")
    # Kill the server side (SuperLink and its ServerApp) once the sites are in round 2.
    wait_until(
        lambda: all(ledger_steps(tmp_path / f"{s}-state") >= 4 for s in ("site-a", "site-b")),
        120,
        "the sites to start round 2",
    )
    kill_tree(processes.running[0].pid)
    run.wait(timeout=60)
    checkpointed = len(stats(run_dir))
    time.sleep(5)  # the sites finish round 2 and keep its reply

    launch_superlink(processes, tmp_path, environment, port, superlink_args, "superlink-again")
    resumed = flwr_run(
        processes,
        tmp_path,
        environment,
        "loopback",
        f'run-dir="{run_dir}" resume=true',
        "flwr-resume",
    )
    summary = finish(resumed, tmp_path, "flwr-resume", run_dir)

    assert checkpointed in (1, 2)
    assert summary["rounds"] == 3
    assert [row["round"] for row in stats(run_dir)] == [1, 2, 3]
    for name in ("site-a", "site-b"):
        # Round 2 was answered from the site's kept reply, not trained and paid twice.
        assert ledger_steps(tmp_path / f"{name}-state") == 6
        assert 2.97 <= summary["epsilon_per_site"][name] <= 3.0 + 1e-9
