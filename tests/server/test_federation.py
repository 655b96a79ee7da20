"""The server loop with real sites (real DP training), exchanged in-process instead of by Flower."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from common.errors import UserError
from common.run_folder import RunFolder
from server.averaging import weighted_average
from server.federation import FederationServer, run_federation
from tests.helpers.configs import tiny_config
from tests.helpers.federation import in_process_exchange


def test_weighted_average_weights_by_examples():
    a = {"w": torch.tensor([0.0, 0.0])}
    b = {"w": torch.tensor([4.0, 8.0])}

    assert torch.equal(weighted_average([a, b], [3, 1])["w"], torch.tensor([1.0, 2.0]))


def test_the_released_generator_averages_the_rounds_aggregates_not_the_initial_one(tmp_path):
    # One generator step per local step, so every round moves the generator.
    config = tiny_config(
        "output.generator_ema=0.9", "training.discriminator_steps_per_generator_step=1"
    )
    exchange = in_process_exchange(config, tmp_path)
    server = FederationServer(config, tmp_path)

    server.apply(*exchange(server.next_request(), set()), seconds=1.0)
    first = {k: v.clone() for k, v in server.state.generator.items()}
    first_ema = {k: v.clone() for k, v in server.state.generator_ema.items()}
    server.apply(*exchange(server.next_request(), set()), seconds=1.0)
    second = server.state.generator

    for key in first:
        assert torch.equal(first_ema[key], first[key])
        expected = 0.9 * first[key].double() + 0.1 * second[key].double()
        assert torch.allclose(server.state.generator_ema[key].double(), expected, atol=1e-6)


def test_the_server_works_on_its_runtime_device(tmp_path):
    server = FederationServer(tiny_config("runtime.device=cpu"), tmp_path)

    assert server.device == torch.device("cpu")


def test_a_server_asked_for_a_gpu_it_lacks_stops_before_writing_anything(tmp_path):
    with pytest.raises(UserError, match="runtime.device=cuda"):
        FederationServer(tiny_config("runtime.device=cuda"), tmp_path / "run")

    assert not (tmp_path / "run").exists()


def test_a_run_writes_every_output(tmp_path):
    config = tiny_config()
    folder = RunFolder(tmp_path)

    summary = run_federation(config, tmp_path, False, in_process_exchange(config, tmp_path))

    assert summary["rounds"] == 3
    assert summary["stop_reason"] == "completed 3 rounds"
    assert set(summary["epsilon_per_site"]) == {"site-0", "site-1"}
    assert all(0 < eps <= 10 for eps in summary["epsilon_per_site"].values())
    stats = [json.loads(line) for line in folder.stats_file.read_text().splitlines()]
    assert [row["round"] for row in stats] == [1, 2, 3]
    grid = Image.open(folder.samples_image)
    assert grid.size[0] > 100
    npz = np.load(folder.synthetic_file)
    rows = 1 + len(config.data.options.findings)  # "no finding" + one row per finding
    assert npz["train_images"].shape == (rows * 3, 28, 28)
    assert npz["train_labels"].shape == (rows * 3, 4)
    assert len(folder.synthetic_labels.read_text().splitlines()) == rows * 3 + 1
    for path in (
        folder.config_file,
        folder.generator_file,
        folder.training_plot,
        folder.summary_file,
        folder.checkpoint_file,
    ):
        assert path.exists()


def test_resume_continues_from_the_last_completed_round(tmp_path):
    config = tiny_config()
    exchange = in_process_exchange(config, tmp_path)

    class Killed(Exception):
        pass

    calls = []

    def dies_in_round_three(request, skip):
        if request.round_request.round == 3:
            raise Killed
        calls.append(request.round_request.round)
        return exchange(request, skip)

    with pytest.raises(Killed):
        FederationServer(config, tmp_path).run(dies_in_round_three)
    folder = RunFolder(tmp_path)
    saved = torch.load(folder.checkpoint_file, weights_only=True)

    resumed = FederationServer(config, tmp_path, resume=True)
    first_request = resumed.next_request()
    state = resumed.run(exchange)

    assert calls == [1, 2]
    assert first_request.round_request.round == 3
    assert all(
        torch.equal(first_request.generator[k], saved["generator"][k]) for k in saved["generator"]
    )
    assert state.round == 3
    assert len(folder.stats_file.read_text().splitlines()) == 3
    ledger = json.loads(folder.site(0).ledger.read_text())
    assert sum(e["steps"] for e in ledger["entries"] if e["mechanism"] == "dp-sgd") == 6


def test_a_kill_between_stats_and_checkpoint_leaves_no_duplicate_round(tmp_path):
    config = tiny_config("federation.rounds=2")
    exchange = in_process_exchange(config, tmp_path)
    server = FederationServer(config, tmp_path)
    server.apply(*exchange(server.next_request(), set()), seconds=1.0)
    folder = RunFolder(tmp_path)
    with open(folder.stats_file, "a") as log:  # round 2 logged, then killed
        log.write(json.dumps({"round": 2, "sites": {}, "failures": []}) + "\n" + '{"rou')

    resumed = FederationServer(config, tmp_path, resume=True)
    resumed.run(exchange)

    rounds = [json.loads(line)["round"] for line in open(folder.stats_file)]
    assert rounds == [1, 2]


def test_the_run_stops_when_every_site_refuses(tmp_path):
    # Sites calibrated for 2 rounds of 2 steps; the server then asks for more rounds.
    config = tiny_config("federation.rounds=2")
    run_federation(config, tmp_path / "a", False, in_process_exchange(config, tmp_path / "a"))
    longer = tiny_config("federation.rounds=5")
    server = FederationServer(longer, tmp_path / "a", resume=True)

    state = server.run(in_process_exchange(longer, tmp_path / "a"))

    assert state.round == 3
    assert "every site refused" in state.stop_reason


def test_a_failed_site_is_asked_again_without_re_running_the_others(tmp_path):
    config = tiny_config("federation.min_sites=2", "federation.retry_wait_s=0")
    attempts = []

    def down_once(site_id, round_number):
        attempts.append((site_id, round_number))
        return site_id == 1 and attempts.count((1, round_number)) == 1

    state = FederationServer(config, tmp_path).run(
        in_process_exchange(config, tmp_path, down=down_once)
    )

    assert state.round == 3
    assert attempts.count((0, 1)) == 1  # site 0 answered once per round: no double spend
    ledger = json.loads(RunFolder(tmp_path).site(0).ledger.read_text())
    assert sum(e["steps"] for e in ledger["entries"] if e["mechanism"] == "dp-sgd") == 6


def test_fewer_than_min_sites_after_retries_stops_with_a_clear_reason(tmp_path):
    config = tiny_config(
        "federation.min_sites=2", "federation.retry_wait_s=0", "federation.round_retries=2"
    )
    asked = []

    def site_one_is_gone(site_id, round_number):
        asked.append(site_id)
        return site_id == 1

    state = FederationServer(config, tmp_path).run(
        in_process_exchange(config, tmp_path, down=site_one_is_gone)
    )

    assert state.round == 1
    assert asked.count(1) == 3  # first try + 2 retries
    assert "fewer than federation.min_sites=2" in state.stop_reason
    assert "site crashed" in state.stop_reason


def test_a_second_server_on_a_folder_in_use_writes_nothing(tmp_path, hold_run_folder):
    config = tiny_config()
    hold_run_folder(tmp_path)

    with pytest.raises(UserError, match="in use by another privsynth process"):
        run_federation(config, tmp_path, False, in_process_exchange(config, tmp_path))

    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]
