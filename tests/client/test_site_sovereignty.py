"""A site's own rules hold whatever the server asks: budget across runs, clip, noise, outputs."""

import pytest
import torch
import yaml

from client.handler import answer_train
from client.site import RoundRefused
from client.site_config import site_device, site_settings
from common.config import config_from_dict, config_to_dict
from common.privacy.accounting import SIZE_ESTIMATE, epsilon_spent
from common.protocol import SiteError
from common.run_folder import SiteFolder
from tests.helpers.datasets import write_site_npz
from tests.helpers.sites import (
    CONFIG,
    SERVER_CONFIG,
    deployed_site,
    encoded_requests,
    generator_state,
    make_site,
    medmnist_site_yaml,
    request,
    run,
)

SMALL_SERVER_CONFIG = config_from_dict(
    {**config_to_dict(SERVER_CONFIG), "model": config_to_dict(CONFIG)["model"]}
)


def test_a_new_run_continues_the_ledger_of_the_same_dataset(tmp_path):
    path = write_site_npz(tmp_path / "site.npz")
    node_config = medmnist_site_yaml(tmp_path, path, **{"privacy.max_epsilon": 10})
    first_run = deployed_site(SMALL_SERVER_CONFIG, node_config, run_dir="run-1")
    first_run.run_round(
        SMALL_SERVER_CONFIG, request(1), generator_state(), None, torch.device("cpu")
    )

    second_run = deployed_site(SMALL_SERVER_CONFIG, node_config, run_dir="run-2")
    result = second_run.run_round(
        SMALL_SERVER_CONFIG, request(1), generator_state(), None, torch.device("cpu")
    )

    assert second_run.ledger_path == first_run.ledger_path
    assert second_run.run_state_dir != first_run.run_state_dir
    assert result.metrics["steps"] == 10


def test_a_server_repeating_a_round_number_still_pays_for_every_round(tmp_path):
    site = make_site(tmp_path, epsilon=4.0)
    first = run(site, 1)
    other_weights = {key: value + 0.01 for key, value in generator_state().items()}

    second = site.run_round(CONFIG, request(1), other_weights, None, torch.device("cpu"))

    sigma, rate = first.metrics["noise_multiplier"], first.metrics["sample_rate"]
    assert second.metrics["steps"] == 10
    assert second.metrics["epsilon"] == pytest.approx(
        epsilon_spent([SIZE_ESTIMATE, (sigma, rate, 10)], delta=1e-5, accountant="rdp")
    )


def test_the_same_request_again_gets_the_same_reply_at_no_privacy_cost(tmp_path):
    site = make_site(tmp_path)
    weights = generator_state()
    first = site.run_round(CONFIG, request(1), weights, None, torch.device("cpu"))

    again = site.run_round(CONFIG, request(1), weights, None, torch.device("cpu"))

    assert site.open_ledger().steps == 5
    assert again.metrics == first.metrics
    assert all(torch.equal(again.generator[k], v) for k, v in first.generator.items())


def test_a_clip_other_than_the_sites_is_refused(tmp_path):
    site = make_site(tmp_path, max_grad_norm=1.0)
    asks_larger_clip = config_from_dict(
        {**config_to_dict(CONFIG), "privacy": {"max_grad_norm": 5.0}}
    )

    with pytest.raises(RoundRefused, match="clip") as refusal:
        site.run_round(asks_larger_clip, request(1), generator_state(), None, torch.device("cpu"))

    assert refusal.value.code == SiteError.REFUSED_POLICY

    assert not site.ledger_path.exists()


def test_noise_below_the_sites_minimum_is_refused(tmp_path):
    site = make_site(tmp_path, min_noise_multiplier=2.0)
    asks_little_noise = config_from_dict(
        {**config_to_dict(CONFIG), "privacy": {"noise_multiplier": 0.5}}
    )

    with pytest.raises(RoundRefused, match="below the site's minimum"):
        site.run_round(asks_little_noise, request(1), generator_state(), None, torch.device("cpu"))


def test_once_calibrated_a_request_for_other_noise_is_refused(tmp_path):
    site = make_site(tmp_path)
    run(site, 1)
    asks_other_noise = config_from_dict(
        {**config_to_dict(CONFIG), "privacy": {"noise_multiplier": 0.3}}
    )

    with pytest.raises(RoundRefused, match="noise multiplier 0.3"):
        site.run_round(asks_other_noise, request(2), generator_state(), None, torch.device("cpu"))


def test_a_fixed_noise_multiplier_is_used_and_accounted(tmp_path):
    site = make_site(tmp_path, epsilon=50.0, size_estimate=40.0)
    fixed = config_from_dict({**config_to_dict(CONFIG), "privacy": {"noise_multiplier": 1.5}})

    result = site.run_round(fixed, request(1), generator_state(), None, torch.device("cpu"))

    assert result.metrics["noise_multiplier"] == 1.5
    assert result.metrics["epsilon"] == pytest.approx(
        epsilon_spent([SIZE_ESTIMATE, (1.5, 8 / 40, 5)], delta=1e-5, accountant="rdp")
    )


def test_a_site_that_keeps_its_discriminator_replies_with_the_generator_only(tmp_path):
    site = make_site(tmp_path, share_discriminator=False)

    result = run(site, 1)

    assert result.discriminator is None
    assert result.generator


def _asking_for_a_gpu(content):
    """A train request whose server config sets runtime.device: cuda."""
    config = yaml.safe_load(content["request"]["config"])
    config["runtime"] = {"device": "cuda"}
    content["request"]["config"] = yaml.safe_dump(config)
    return content


def test_a_simulated_site_computes_on_the_runs_runtime_device():
    config = config_from_dict({"runtime": {"device": "cpu"}})

    assert site_device(config, None) == torch.device("cpu")


def test_a_deployed_sites_own_device_setting_wins_over_the_servers(tmp_path):
    node_config = medmnist_site_yaml(tmp_path, tmp_path / "site.npz", device="cpu")
    config = config_from_dict({"runtime": {"device": "cuda"}})

    assert site_device(config, site_settings(node_config)) == torch.device("cpu")


def test_a_server_asking_for_a_gpu_does_not_stop_a_site_without_one(tmp_path):
    node_config = medmnist_site_yaml(tmp_path, write_site_npz(tmp_path / "site.npz"))
    content = _asking_for_a_gpu(encoded_requests("mean_embedding")[0])

    reply = answer_train(content, node_config=node_config, node_id=1)

    assert not isinstance(reply, SiteError)


def test_a_site_asking_for_a_gpu_it_lacks_refuses_and_says_why_in_its_own_log(tmp_path):
    path = write_site_npz(tmp_path / "site.npz")
    node_config = medmnist_site_yaml(tmp_path, path, device="cuda")

    reply = answer_train(encoded_requests("mean_embedding")[0], node_config=node_config, node_id=1)

    assert reply == SiteError.REFUSED_POLICY
    log = SiteFolder(tmp_path / "s").log.read_text()
    assert "device=cuda" in log and "use device=cpu or auto" in log
