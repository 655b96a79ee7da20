"""`privsynth run` end to end: Flower's simulation engine (Ray) with real DP sites."""

import json
import os
import shlex
import subprocess

import pytest

from common.prior.file import PRIOR_DIR, prior_hash
from common.privacy.ledger import PrivacyLedger
from common.run_folder import RunFolder
from tests.helpers.configs import TINY
from tests.helpers.processes import BIN, env, run_collecting_leftovers

# The quickstart preset's three sites on TINY's images and models, with 40 patients and two
# rounds of three local steps.
SIMULATION = [
    *TINY,
    "data.phantom.num_patients=40",
    "federation.num_sites=3",
    "federation.rounds=2",
    "federation.local_steps=3",
]


def privsynth(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "privsynth"), *args], capture_output=True, text=True, env=env(), timeout=timeout
    )


def overrides(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


@pytest.mark.timeout(400)
def test_three_site_simulation_writes_a_run_folder_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    folder = RunFolder(run_dir)

    result = privsynth("run", "quickstart", *overrides(*SIMULATION), "--run-dir", str(run_dir))

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(folder.summary_file.read_text())
    assert summary["rounds"] == 2
    assert sorted(summary["epsilon_per_site"]) == ["site-0", "site-1", "site-2"]
    assert all(0 < eps <= 10.0 for eps in summary["epsilon_per_site"].values())
    stats = [json.loads(line) for line in folder.stats_file.read_text().splitlines()]
    assert [len(row["sites"]) for row in stats] == [3, 3]
    split = folder.read_split()
    members = {i for site in split["sites"] for i in site}
    assert members.isdisjoint(split["holdout"])
    assert folder.read_synthetic()[0].shape[1:] == (28, 28)

    again = privsynth("run", "--resume", str(run_dir))

    assert again.returncode == 0, again.stderr[-3000:]
    assert len(folder.stats_file.read_text().splitlines()) == 2
    assert "completed 2 rounds" in again.stdout


@pytest.mark.timeout(400)
def test_a_mean_embedding_simulation_is_one_release_per_site_then_the_servers_fit(tmp_path):
    run_dir = tmp_path / "run"
    folder = RunFolder(run_dir)
    method = [
        "training.method=mean_embedding",
        "mean_embedding.frequencies=64",
        "mean_embedding.generator_steps=5",
        "privacy.target_epsilon=1",
    ]

    result = privsynth(
        "run", "quickstart", *overrides(*SIMULATION, *method), "--run-dir", str(run_dir)
    )

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(folder.summary_file.read_text())
    assert summary["rounds"] == 1
    assert all(0.9 < eps <= 1.0 for eps in summary["epsilon_per_site"].values())
    assert sorted(summary["epsilon_per_site"]) == ["site-0", "site-1", "site-2"]
    for site in range(3):
        ledger = json.loads(folder.site(site).ledger.read_text())
        assert [(e["sample_rate"], e["steps"]) for e in ledger["entries"]] == [(1.0, 1)]
    assert folder.read_synthetic()[0].shape[1:] == (28, 28)


@pytest.mark.timeout(400)
def test_ten_sites_take_turns_on_one_actor_per_core_and_leave_no_process_behind(tmp_path):
    run_dir = tmp_path / "run"
    folder = RunFolder(run_dir)
    ten_sites = [*TINY, "data.phantom.num_patients=60", "federation.num_sites=10"]
    ten_sites += ["federation.rounds=1", "runtime.device=cpu"]

    result, left = run_collecting_leftovers(
        [str(BIN / "privsynth"), "run", "quickstart", *overrides(*ten_sites)]
        + ["--run-dir", str(run_dir)],
        report=tmp_path / "left.json",
        timeout=300,
        env=env(),
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert [len(row["sites"]) for row in folder.read_stats()] == [10]
    flower_log = (folder.logs_dir / "flwr-run.log").read_text()
    assert f"ActorPool with: {min(os.cpu_count(), 10)} actors" in flower_log
    assert "federation: 100%" in result.stdout  # the server's round bar reaches the user
    assert "DEBUG" not in result.stdout  # Flower's own log stays in the log file
    assert left == [], f"the run left these processes running: {left}"


@pytest.mark.timeout(400)
def test_a_run_stopped_with_kill_stops_what_it_started_and_says_how_to_resume(tmp_path):
    run_dir = tmp_path / "run"
    folder = RunFolder(run_dir)
    run = [str(BIN / "privsynth"), "run", "quickstart", "--run-dir", str(run_dir)]
    run += overrides(*SIMULATION, "federation.rounds=20", "runtime.device=cpu")
    stats = shlex.quote(str(folder.stats_file))
    # `kill` (SIGTERM) to privsynth alone, once its first round is written.
    kill_after_a_round = (
        f"{shlex.join(run)} & pid=$!; "
        f"while [ ! -s {stats} ] && kill -0 $pid; do sleep 0.2; done; "
        "kill -TERM $pid; wait $pid"
    )

    result, left = run_collecting_leftovers(
        ["sh", "-c", kill_after_a_round], report=tmp_path / "left.json", timeout=300, env=env()
    )

    assert result.returncode == 130, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"continue with: privsynth run --resume {run_dir}" in result.stdout
    assert 1 <= len(folder.read_stats()) < 20
    assert left == [], f"the stopped run left these processes running: {left}"


def test_the_leftover_check_finds_what_a_command_leaves_running_and_nothing_else(tmp_path):
    leaving = ["sh", "-c", "setsid sleep 61 & exit 0"]
    tidy = ["sh", "-c", "sleep 0.1 & wait"]

    _, left = run_collecting_leftovers(leaving, report=tmp_path / "a.json", timeout=60)
    _, none_left = run_collecting_leftovers(tidy, report=tmp_path / "b.json", timeout=60)

    assert left == ["sleep 61"]
    assert none_left == []


@pytest.mark.timeout(400)
def test_the_demo_starts_from_the_prior_it_names_under_priors(tmp_path):
    run_dir = tmp_path / "run"
    folder = RunFolder(run_dir)
    # The demo's own models and prior, on a few images for one short round.
    small = [
        "data.phantom.num_patients=30",
        "data.phantom.images_per_patient=2",
        "federation.num_sites=2",
        "federation.rounds=1",
        "federation.local_steps=2",
        "output.samples_per_class=3",
        "output.grid_columns=3",
    ]

    result = privsynth("run", "quickstart", *overrides(*small), "--run-dir", str(run_dir))

    assert result.returncode == 0, result.stderr[-3000:]
    shipped = prior_hash(PRIOR_DIR / "phantom-32")
    for site in range(2):
        path = folder.site(site).ledger
        entries = PrivacyLedger.open(path, **PrivacyLedger.read_settings(path)).entries
        assert [e.prior for e in entries if e.mechanism == "dp-sgd"] == [shipped]


def test_cuda_on_a_machine_without_one_is_one_line_not_a_traceback(tmp_path):
    result = privsynth(
        "run", "quickstart", *overrides(*TINY, "runtime.device=cuda"), "--run-dir", str(tmp_path)
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "runtime.device=cuda" in result.stderr
    assert "use runtime.device=cpu or auto" in result.stderr
