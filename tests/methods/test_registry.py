import pytest

from common.config import METHODS as CONFIG_METHODS
from common.config import config_from_dict
from common.errors import UserError
from common.run_folder import RunFolder
from methods import METHODS, method_for
from tests.helpers.configs import tiny_config
from tests.helpers.federation import in_process_exchange


def test_every_method_the_config_accepts_is_registered():
    assert METHODS.names() == sorted(CONFIG_METHODS)


def test_an_unknown_method_lists_the_valid_choices():
    with pytest.raises(UserError, match="valid choices: dpgan, mean_embedding"):
        METHODS.get("gan")


@pytest.mark.parametrize(
    "method, rounds, local_steps, planned_steps",
    [("dpgan", 4, 25, 100), ("mean_embedding", 1, 1, 1), ("mean_embedding_dpgan", 5, 25, 100)],
)
def test_the_schedule_is_the_methods(method, rounds, local_steps, planned_steps):
    config = config_from_dict(
        {"training": {"method": method}, "federation": {"rounds": 4, "local_steps": 25}}
    )

    schedule = method_for(config).schedule(config)

    assert (schedule.rounds, schedule.local_steps) == (rounds, local_steps)
    assert schedule.planned_steps == planned_steps


def test_a_release_request_carries_no_weights(tmp_path):
    from server.federation import FederationServer

    config = config_from_dict({"training": {"method": "mean_embedding"}})

    request = FederationServer(config, tmp_path).next_request()

    assert request.generator == {} and request.discriminator is None


@pytest.mark.parametrize("method", CONFIG_METHODS)
def test_every_loss_curve_a_method_names_is_in_its_sites_metrics(method, tmp_path):
    from server.federation import run_federation

    config = tiny_config(f"training.method={method}", "federation.rounds=1")

    run_federation(config, tmp_path, False, in_process_exchange(config, tmp_path))

    rows = RunFolder(tmp_path).read_stats()
    assert rows
    for row in rows:
        for metrics in row["sites"].values():
            assert {key for _, key in method_for(config).loss_curves} <= set(metrics) or (
                row["round"] == 1 and "release" in method_for(config).ledger_mechanisms
            )
    assert RunFolder(tmp_path).training_plot.stat().st_size > 0


@pytest.mark.parametrize("method", CONFIG_METHODS)
def test_each_method_names_the_ledger_mechanism_its_rounds_record(method, tmp_path):
    from common.privacy.ledger import PrivacyLedger
    from server.federation import run_federation

    config = tiny_config(f"training.method={method}", "federation.rounds=1")

    run_federation(config, tmp_path, False, in_process_exchange(config, tmp_path))

    ledger_file = RunFolder(tmp_path).site(0).ledger
    ledger = PrivacyLedger.open(ledger_file, **PrivacyLedger.read_settings(ledger_file))
    recorded = {entry.mechanism for entry in ledger.entries} - {"size-estimate"}
    assert recorded == set(method_for(config).ledger_mechanisms)


@pytest.mark.parametrize(
    "method, more_work",
    [
        ("dpgan", "federation.local_steps=40"),
        ("mean_embedding", "mean_embedding.generator_steps=400"),
        ("mean_embedding_dpgan", "federation.local_steps=40"),
        ("mean_embedding_dpgan", "mean_embedding.generator_steps=400"),
    ],
)
def test_the_run_time_estimate_grows_with_the_methods_work(method, more_work):
    config = tiny_config(f"training.method={method}", "mean_embedding.generator_steps=10")
    larger = tiny_config(
        f"training.method={method}", "mean_embedding.generator_steps=10", more_work
    )

    estimate = method_for(config).estimate_seconds(config)
    larger_estimate = method_for(larger).estimate_seconds(larger)

    assert 0 < estimate < larger_estimate
