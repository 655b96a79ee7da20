"""The release-then-DP-GAN method: the release and the DP-SGD rounds share one budget."""

import pytest
import torch

from common.privacy.accounting import SIZE_ESTIMATE, calibrate_release_noise, epsilon_spent
from common.privacy.ledger import PrivacyLedger
from common.run_folder import RunFolder
from methods import METHODS, method_for
from server.federation import FederationServer, run_federation
from tests.helpers.configs import tiny_config
from tests.helpers.federation import in_process_exchange


def _ledger(run_dir, site):
    path = RunFolder(run_dir).site(site).ledger
    return PrivacyLedger.open(path, **PrivacyLedger.read_settings(path))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = tiny_config(
        "training.method=mean_embedding_dpgan",
        "training.release_share=0.4",
        "privacy.target_epsilon=4",
        "mean_embedding.generator_steps=5",
        "federation.rounds=2",
        "training.discriminator_steps_per_generator_step=1",
    )
    exchange = in_process_exchange(config, run_dir)
    requests = []

    def recording(request, skip):
        requests.append(request)
        return exchange(request, skip)

    run_federation(config, run_dir, False, recording)
    return config, run_dir, requests


def test_the_release_spends_its_share_and_the_rounds_the_rest(run):
    config, run_dir, _ = run
    for site in range(config.federation.num_sites):
        ledger = _ledger(run_dir, site)
        release = [e for e in ledger.entries if e.mechanism == "release"]
        steps = [e for e in ledger.entries if e.mechanism == "dp-sgd"]
        assert [e.round for e in release] == [1]
        assert [e.round for e in steps] == [2, 3]
        assert sum(e.steps for e in steps) == 2 * config.federation.local_steps
        release_epsilon = epsilon_spent(
            [(release[0].noise_multiplier, 1.0, 1)],
            delta=ledger.delta,
            accountant=ledger.accountant,
        )
        assert release_epsilon == pytest.approx(0.4 * 4, rel=0.01)
        assert 0.97 * 4 <= ledger.epsilon() <= 4 * 1.001


def test_the_rounds_start_from_the_fitted_generator(run, tmp_path):
    config, run_dir, requests = run
    initial, _ = FederationServer(config, tmp_path).new_models()

    rows = RunFolder(run_dir).read_stats()

    assert [row["round"] for row in rows] == [1, 2, 3]
    assert "fit_loss" in rows[0]["server"]
    assert all("g_loss" in metrics for metrics in rows[1]["sites"].values())
    assert requests[0].generator == {} and requests[0].discriminator is None
    fitted = requests[1].generator
    assert fitted.keys() == initial.state_dict().keys()
    assert any(not torch.equal(fitted[k], v) for k, v in initial.state_dict().items())
    assert any(not torch.equal(requests[2].generator[k], v) for k, v in fitted.items())


def test_the_plan_calibrates_the_steps_to_the_budget_the_release_leaves():
    config = tiny_config(
        "training.method=mean_embedding_dpgan",
        "training.release_share=0.5",
        "privacy.target_epsilon=4",
        "federation.rounds=4",
        "federation.local_steps=25",
    )
    budget = config.site_budget(0)
    method = method_for(config)

    plan = method.plan_noise(config, units=200, budget=budget)
    alone = METHODS.get("dpgan").plan_noise(config, units=200, budget=budget)

    assert plan.sample_rate == alone.sample_rate == config.training.batch_size / 200
    assert plan.noise_multiplier > alone.noise_multiplier
    release_sigma = calibrate_release_noise(
        history=[], target_epsilon=2.0, delta=budget.delta, accountant=config.privacy.accountant
    )
    total = epsilon_spent(
        [(release_sigma, 1.0, 1), SIZE_ESTIMATE, (plan.noise_multiplier, plan.sample_rate, 100)],
        delta=budget.delta,
        accountant=config.privacy.accountant,
    )
    assert total == pytest.approx(4.0, rel=0.01)
