"""A run that starts from a public prior: the server's generator and discriminator are the
prior's, each site's ledger names the prior by its hash, and without a prior nothing
changes."""

import json

import pytest
import torch

from cli.main import main
from common.config import METHODS, config_to_dict
from common.errors import UserError
from common.models import build_models
from common.prior.file import load_prior, prior_hash
from common.privacy.ledger import PrivacyLedger
from common.run_folder import RunFolder
from server.federation import FederationServer
from tests.helpers.configs import tiny_config
from tests.helpers.federation import in_process_exchange
from tests.helpers.priors import LABELLED, build_prior


@pytest.mark.parametrize("method", METHODS)
def test_the_server_starts_every_method_from_the_prior(tmp_path, method):
    _, out = build_prior(tmp_path)
    config = tiny_config(f"model.prior={out}", f"training.method={method}")
    prior = load_prior(str(out), config)

    server = FederationServer(config, tmp_path / "run")

    for key, value in prior.generator.items():
        assert torch.equal(server.state.generator[key], value)
        assert torch.equal(server.state.generator_ema[key], value)
    for key, value in prior.discriminator.items():
        assert torch.equal(server.state.discriminator[key], value)
    for key in prior.condition_keys["generator"]:
        assert not server.state.generator[key].any()


def test_the_server_starts_from_a_labelled_prior_with_what_it_learnt_of_each_finding(
    tmp_path,
):
    _, out = build_prior(tmp_path, options=LABELLED)
    config = tiny_config(f"model.prior={out}")
    prior = load_prior(str(out), config)

    server = FederationServer(config, tmp_path / "run")

    assert prior.condition_keys["generator"] <= set(prior.generator)
    for key, value in prior.generator.items():
        assert torch.equal(server.state.generator[key], value)
    assert any(server.state.generator[key].any() for key in prior.condition_keys["generator"])


def test_without_a_prior_the_models_are_the_seeded_random_ones(tmp_path):
    config = tiny_config()

    server = FederationServer(config, tmp_path)

    torch.manual_seed(config.seed)
    generator, discriminator = build_models(len(server.class_names), 28, config.model)

    assert server.state.generator.keys() == generator.state_dict().keys()
    for key, value in generator.state_dict().items():
        assert torch.equal(server.state.generator[key], value)
    for key, value in discriminator.state_dict().items():
        assert torch.equal(server.state.discriminator[key], value)


def _ledger_entries(run_dir, site):
    path = RunFolder(run_dir).site(site).ledger
    return PrivacyLedger.open(path, **PrivacyLedger.read_settings(path)).entries


@pytest.mark.parametrize(("share", "options"), [(True, ()), (False, ()), (False, LABELLED)])
def test_each_sites_ledger_records_the_prior_it_started_from(tmp_path, share, options):
    _, out = build_prior(tmp_path, options=options)
    config = tiny_config(f"model.prior={out}", f"federation.share_discriminator={share}")
    run_dir = tmp_path / "run"
    server = FederationServer(config, run_dir)

    replies, failures = in_process_exchange(config, run_dir)(server.next_request(), set())

    assert not failures and len(replies) == 2
    for site in range(2):
        entries = _ledger_entries(run_dir, site)
        assert [e.prior for e in entries if e.mechanism == "dp-sgd"] == [prior_hash(out)]
        assert [e.prior for e in entries if e.mechanism == "size-estimate"] == [""]


@pytest.mark.parametrize(("share", "recorded"), [(0.5, True), (0.0, False)])
def test_a_release_records_the_prior_whose_features_it_embeds(tmp_path, share, recorded):
    _, out = build_prior(tmp_path)
    config = tiny_config(
        f"model.prior={out}",
        "training.method=mean_embedding",
        "mean_embedding.frequencies=8",
        "mean_embedding.generator_steps=2",
        f"mean_embedding.prior_features={share}",
    )
    run_dir = tmp_path / "run"
    server = FederationServer(config, run_dir)

    replies, failures = in_process_exchange(config, run_dir)(server.next_request(), set())

    assert not failures and len(replies) == 2
    expected = prior_hash(out) if recorded else ""
    for site in range(2):
        releases = [e for e in _ledger_entries(run_dir, site) if e.mechanism == "release"]
        assert [e.prior for e in releases] == [expected]
    dim = replies[0].result.release["feature_sums"].shape[1]
    assert dim > 16 if recorded else dim == 16


def test_a_run_without_a_prior_records_none(tmp_path):
    config = tiny_config()
    server = FederationServer(config, tmp_path)

    in_process_exchange(config, tmp_path)(server.next_request(), set())

    assert {e.prior for e in _ledger_entries(tmp_path, 0)} == {""}


def test_a_prior_for_other_models_stops_the_server_with_one_error(tmp_path):
    _, out = build_prior(tmp_path)
    config = tiny_config(f"model.prior={out}", "model.discriminator_width=16")

    with pytest.raises(UserError, match="model.discriminator_width=8, but the config has"):
        FederationServer(config, tmp_path / "run")


def test_a_missing_prior_stops_the_server_with_one_error(tmp_path):
    config = tiny_config(f"model.prior={tmp_path / 'gone'}")

    with pytest.raises(UserError, match="model.prior: .*gone has no weights.pt"):
        FederationServer(config, tmp_path / "run")


def test_a_ledger_kept_before_priors_reads_with_none(tmp_path):
    path = tmp_path / "ledger.json"
    entry = {"round": 1, "mechanism": "dp-sgd", "noise_multiplier": 1.0, "sample_rate": 0.1}
    raw = {"unit": "image", "delta": 1e-5, "accountant": "rdp", "noise_multiplier": 1.0}
    raw |= {"sample_rate": 0.1, "unit_count_estimate": 40.0}
    raw["entries"] = [entry | {"steps": 5, "time": 0.0}]
    path.write_text(json.dumps(raw))

    ledger = PrivacyLedger.open(path, unit="image", delta=1e-5, accountant="rdp")

    assert ledger.entries[0].prior == ""
    assert ledger.steps == 5


def test_the_resolved_config_keeps_the_prior(tmp_path):
    _, out = build_prior(tmp_path)
    config = tiny_config(f"model.prior={out}")

    FederationServer(config, tmp_path / "run")

    assert RunFolder(tmp_path / "run").read_config().model.prior == str(out)
    assert config_to_dict(config)["model"]["prior"] == str(out)


def test_a_site_whose_discriminator_is_not_sent_starts_its_own_from_the_prior(tmp_path):
    _, out = build_prior(tmp_path)
    # A learning rate this small keeps the round's discriminator where it started.
    settings = ["federation.share_discriminator=false", "training.discriminator_lr=0.00000001"]
    config = tiny_config(f"model.prior={out}", *settings)
    run_dir = tmp_path / "run"
    server = FederationServer(config, run_dir)
    prior = load_prior(str(out), config)

    in_process_exchange(config, run_dir)(server.next_request(), set())

    trained = torch.load(RunFolder(run_dir).site(0).training_state, weights_only=True)
    for key, value in prior.discriminator.items():
        assert torch.allclose(trained["discriminator"][key], value, atol=1e-5)
    for key in prior.condition_keys["discriminator"]:
        assert trained["discriminator"][key].abs().max() < 1e-5


def test_the_ledger_command_names_the_prior(tmp_path, capsys):
    _, out = build_prior(tmp_path)
    config = tiny_config(f"model.prior={out}", "federation.num_sites=1")
    run_dir = tmp_path / "run"
    server = FederationServer(config, run_dir)
    in_process_exchange(config, run_dir)(server.next_request(), set())
    capsys.readouterr()

    assert main(["ledger", str(RunFolder(run_dir).site(0).path)]) == 0

    assert f"started from public prior sha256 {prior_hash(out)}" in capsys.readouterr().out


def test_a_run_with_a_missing_prior_stops_before_it_starts(tmp_path, capsys):
    missing = tmp_path / "gone"
    argv = ["run", "quickstart", "--run-dir", str(tmp_path / "run")]

    code = main([*argv, "--set", f"model.prior={missing}"])

    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("privsynth: error: model.prior:") and "\n" not in err
    assert not (tmp_path / "run").exists()
