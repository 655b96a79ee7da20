import json

import numpy as np
import pytest
import torch

from client.mean_embedding import noisy_class_sums
from client.site import RoundRefused
from client.site_config import site_settings
from common.config import config_from_dict, config_to_dict
from common.data.federation import clear_memory_cache
from common.errors import UserError
from common.mean_embedding import features_for
from common.models import build_models
from common.privacy.accounting import SIZE_ESTIMATE, epsilon_spent
from common.protocol import SiteError
from common.run_folder import SiteFolder
from tests.helpers.datasets import write_site_npz
from tests.helpers.sites import (
    CONFIG,
    SERVER_CONFIG,
    deployed_site,
    generator_state,
    make_site,
    medmnist_site_yaml,
    request,
    run,
)


def test_reported_epsilon_is_the_accountants_over_everything_done(tmp_path):
    site = make_site(tmp_path, size_estimate=40.0)

    first = run(site, 1)
    second = run(make_site(tmp_path), 2)  # a restarted site reads its ledger back

    sigma, rate = first.metrics["noise_multiplier"], first.metrics["sample_rate"]
    assert second.metrics["steps"] == 10
    assert second.metrics["epsilon"] == pytest.approx(
        epsilon_spent([SIZE_ESTIMATE, (sigma, rate, 10)], delta=1e-5, accountant="rdp")
    )
    assert first.metrics["epsilon"] < second.metrics["epsilon"] <= 4.0
    assert rate == pytest.approx(8 / 40)
    assert second.metrics["budget_exhausted"] == 1.0


def test_round_over_budget_is_refused_whatever_the_server_asks(tmp_path):
    site = make_site(tmp_path)
    run(site, 1, steps=10, planned=10)

    with pytest.raises(RoundRefused, match="site-x refuses round 2") as refusal:
        run(site, 2, steps=1, planned=1_000_000)

    assert refusal.value.code == SiteError.REFUSED_BUDGET
    ledger = site.open_ledger()
    assert ledger.steps == 10
    assert ledger.epsilon() <= 4.0


def test_a_server_asking_for_too_few_planned_steps_cannot_exceed_the_maximum(tmp_path):
    site = make_site(tmp_path, epsilon=2.0)

    run(site, 1, steps=5, planned=5)
    with pytest.raises(RoundRefused):
        run(site, 2, steps=5, planned=5)


def test_patient_unit_samples_patients(tmp_path):
    site = make_site(tmp_path, unit="patient", size_estimate=10.0)

    result = run(site, 1)

    assert result.metrics["sample_rate"] == pytest.approx(8 / 10)


def test_the_sample_rate_divides_by_a_dp_estimate_of_the_size_recorded_first(tmp_path):
    site = make_site(tmp_path, epsilon=8.0)

    result = run(site, 1)

    ledger = site.open_ledger()
    assert ledger.entries[0].mechanism == "size-estimate"
    assert ledger.unit_count_estimate == result.metrics["unit_count_estimate"]
    assert ledger.unit_count_estimate != 40.0
    # A small site's estimate can fall below the batch size (or zero): the rate is then 1.
    expected = min(1.0, 8 / max(ledger.unit_count_estimate, 1.0))
    assert result.metrics["sample_rate"] == pytest.approx(expected)


def test_only_dp_outputs_leave_the_site(tmp_path):
    result = run(make_site(tmp_path), 1)

    assert set(result.metrics) >= {"epsilon", "delta", "g_loss", "d_loss_fake"}
    assert not {"num_examples", "seconds"} & set(result.metrics)
    assert not any("real" in key for key in result.metrics)
    assert result.discriminator is not None


def test_deployed_site_without_patient_ids_rejects_patient_unit(tmp_path):
    path = write_site_npz(tmp_path / "site.npz")

    with pytest.raises(UserError, match="patient"):
        deployed_site(
            SERVER_CONFIG, medmnist_site_yaml(tmp_path, path, **{"privacy.unit": "patient"})
        )


def test_deployed_site_names_a_missing_data_path(tmp_path):
    node_config = medmnist_site_yaml(tmp_path, tmp_path / "does-not-exist")

    with pytest.raises(UserError, match="does-not-exist"):
        deployed_site(SERVER_CONFIG, node_config, node_id=1)


def test_deployed_site_uses_its_own_data_and_budget(tmp_path):
    path = write_site_npz(tmp_path / "site.npz")
    node_config = medmnist_site_yaml(tmp_path, path, **{"privacy.target_epsilon": 2.5})

    site = deployed_site(SERVER_CONFIG, node_config, node_id=7)

    assert len(site.data) == 6
    assert site.policy.budget.target_epsilon == 2.5
    assert site.ledger_path == SiteFolder(tmp_path / "s").dataset_ledger(
        site_settings(node_config).ledger_key
    )


def test_deployed_site_decodes_its_data_once_into_its_state_dir(tmp_path):
    path = write_site_npz(tmp_path / "site.npz")
    node_config = medmnist_site_yaml(tmp_path, path)

    first = deployed_site(SERVER_CONFIG, node_config, node_id=1)
    cached = list(SiteFolder(tmp_path / "s").cache.glob("*.npz"))
    clear_memory_cache()  # as in a fresh ClientApp process
    second = deployed_site(SERVER_CONFIG, node_config, node_id=1)

    assert len(cached) == 1
    assert np.array_equal(first.data.images, second.data.images)
    assert second.data.class_names == ("a", "b")


def test_malformed_weights_are_refused_before_the_ledger_is_touched(tmp_path):
    site = make_site(tmp_path)
    wrong_shapes, _ = build_models(3, 28, CONFIG.model)  # three classes, the site has two
    poisoned = {key: value.clone() for key, value in generator_state().items()}
    next(iter(poisoned.values())).fill_(float("nan"))

    for state, reason in ((wrong_shapes.state_dict(), "do not match"), (poisoned, "non-finite")):
        with pytest.raises(RoundRefused, match=reason) as refusal:
            site.run_round(CONFIG, request(1), state, None, torch.device("cpu"))
        assert refusal.value.code == SiteError.MALFORMED_REQUEST

    assert not site.ledger_path.exists()


def test_a_generator_with_nearest_upsampling_is_accepted_and_trained(tmp_path):
    config = config_from_dict(config_to_dict(CONFIG), ["model.generator_upsampling=nearest"])

    result = make_site(tmp_path).run_round(
        config, request(1), generator_state(config), None, torch.device("cpu")
    )

    assert result.metrics["steps"] == 5


def test_malformed_step_counts_are_refused(tmp_path):
    with pytest.raises(RoundRefused, match="local_steps: 0 is outside") as refusal:
        run(make_site(tmp_path), 1, steps=0)

    assert refusal.value.code == SiteError.MALFORMED_REQUEST


RELEASE_CONFIG = config_from_dict(
    config_to_dict(CONFIG),
    ["training.method=mean_embedding", "mean_embedding.frequencies=16"],
)


RELEASE_GENERATOR = generator_state()


def release(site, round_number=1):
    return site.run_round(
        RELEASE_CONFIG, request(round_number, 1, 1), RELEASE_GENERATOR, None, torch.device("cpu")
    )


def test_a_release_is_recorded_before_and_reports_the_accountants_epsilon(tmp_path):
    site = make_site(tmp_path, epsilon=1.0)

    result = release(site)

    ledger = json.loads(site.ledger_path.read_text())
    sigma = result.metrics["noise_multiplier"]
    assert [(e["noise_multiplier"], e["sample_rate"], e["steps"]) for e in ledger["entries"]] == [
        (sigma, 1.0, 1)
    ]
    assert result.metrics["epsilon"] == pytest.approx(
        epsilon_spent([(sigma, 1.0, 1)], delta=1e-5, accountant="rdp")
    )
    assert result.metrics["epsilon"] <= 1.0
    assert result.generator == {} and result.discriminator is None
    assert set(result.release) == {"feature_sums", "counts"}
    assert result.release["feature_sums"].shape == (2, 32)


def test_a_release_splits_its_noise_by_the_configured_count_share(tmp_path):
    site = make_site(tmp_path, epsilon=1.0)
    config = config_from_dict(config_to_dict(RELEASE_CONFIG), ["mean_embedding.count_share=0.99"])
    exact = noisy_class_sums(
        site.data, site.unit_keys(), features_for(config), noise_multiplier=0.0, count_share=0.99
    )

    result = site.run_round(config, request(1, 1, 1), RELEASE_GENERATOR, None, torch.device("cpu"))

    # sigma / a on the feature sums: a^2 = 0.01, so 10 sigma (the default share, 1 / (sqrt(32)
    # + 1), would give 1.08 sigma); 64 coordinates.
    noise = result.release["feature_sums"] - exact["feature_sums"]
    sigma = result.metrics["noise_multiplier"]
    assert float(noise.std()) / sigma == pytest.approx(10.0, rel=0.3)


def test_a_repeated_release_request_is_answered_from_the_kept_reply_at_no_cost(tmp_path):
    site = make_site(tmp_path, epsilon=1.0)
    first = release(site)

    again = release(site)

    assert torch.equal(again.release["feature_sums"], first.release["feature_sums"])
    assert len(json.loads(site.ledger_path.read_text())["entries"]) == 1


def test_a_second_release_gets_only_what_is_left_of_the_budget(tmp_path):
    site = make_site(tmp_path, epsilon=1.0)
    first = release(site, 1)

    second = release(site, 2)

    assert second.metrics["noise_multiplier"] > 10 * first.metrics["noise_multiplier"]
    assert second.metrics["epsilon"] <= 1.0


def test_a_site_whose_ledger_is_spent_refuses_to_release(tmp_path):
    site = make_site(tmp_path, epsilon=1.0)
    ledger = site.open_ledger()
    with ledger.transaction():
        ledger.calibrate(noise_multiplier=0.5, sample_rate=0.5)
        ledger.record(round_number=1, steps=1000)

    with pytest.raises(RoundRefused, match="no release fits its budget"):
        release(site, 2)

    assert len(json.loads(site.ledger_path.read_text())["entries"]) == 1
