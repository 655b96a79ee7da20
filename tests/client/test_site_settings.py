"""site.yaml and --node-config keys: the hospital's own settings, with clear errors."""

import pytest

from client.site_settings import NODE_CONFIG_KEYS, load_site_settings, site_data_section
from common.errors import UserError
from tests.helpers.sites import write_site_yaml

# A complete site.yaml, optional keys included.
SITE_SETTINGS = {
    "name": "st-elsewhere",
    "state_dir": "/var/lib/privsynth",
    "data": {
        "path": "/data/cxr.npz",
        "format": "medmnist",
        "options": {"class_names": ["normal", "pneumonia"]},
    },
    "privacy": {
        "target_epsilon": 3,
        "max_epsilon": 5,
        "delta": 1.0e-6,
        "unit": "patient",
        "accountant": "prv",
        "max_grad_norm": 0.5,
        "min_noise_multiplier": 0.8,
    },
    "outputs": {"discriminator": True},
}
# A site.yaml that declares only its classes; the rest comes from node config keys.
CLASSES_ONLY = {"data": {"options": {"class_names": ["a", "b"]}}}


def test_site_yaml_is_parsed_and_node_config_keys_win(tmp_path):
    node_config = write_site_yaml(tmp_path, **SITE_SETTINGS)

    settings = load_site_settings({**node_config, "max-epsilon": "8", "site-name": "ward-9"})

    assert settings.name == "ward-9"
    assert settings.privacy.max_epsilon == 8.0
    assert settings.privacy.target_epsilon == 3.0
    assert settings.privacy.min_noise_multiplier == 0.8
    assert settings.outputs.discriminator is True
    assert settings.data.options == {"class_names": ["normal", "pneumonia"]}


def complete(**node_config):
    """Node config keys for a complete set of settings, with `node_config` on top."""
    base = {
        "state-dir": "/var/lib/privsynth",
        "data-path": "/data/a/cxr.npz",
        "data-format": "medmnist",
        "target-epsilon": 3,
        "delta": 1e-5,
        "privacy-unit": "image",
        "accountant": "rdp",
    }
    return {**base, **node_config}


def test_a_sites_device_is_auto_unless_its_own_settings_name_one(tmp_path):
    unset = write_site_yaml(tmp_path / "unset", **CLASSES_ONLY)["site-config"]
    on_cpu = write_site_yaml(tmp_path / "cpu", device="cpu", **CLASSES_ONLY)["site-config"]

    default = load_site_settings(complete(**{"site-config": unset}))
    from_yaml = load_site_settings(complete(**{"site-config": on_cpu}))
    from_node = load_site_settings(complete(**{"site-config": on_cpu, "device": "cuda"}))

    assert (default.device, from_yaml.device, from_node.device) == ("auto", "cpu", "cuda")


def test_the_ledger_key_follows_the_data_path_unless_named(tmp_path):
    site_config = write_site_yaml(tmp_path, **CLASSES_ONLY)["site-config"]
    same = load_site_settings(complete(**{"site-config": site_config}))
    again = load_site_settings(complete(**{"site-config": site_config, "target-epsilon": 1}))
    moved = load_site_settings(
        complete(**{"site-config": site_config, "data-path": "/data/b/cxr.npz"})
    )

    assert same.ledger_key == again.ledger_key
    assert same.ledger_key.startswith("cxr.npz-")
    assert moved.ledger_key != same.ledger_key


@pytest.mark.parametrize(
    "missing",
    ["state-dir", "data-format", "target-epsilon", "delta", "privacy-unit", "accountant"],
)
def test_a_site_takes_no_data_or_privacy_setting_from_the_server(tmp_path, missing):
    site_config = write_site_yaml(tmp_path, **CLASSES_ONLY)["site-config"]
    node_config = complete(**{"site-config": site_config})
    del node_config[missing]

    with pytest.raises(UserError, match="this site's own settings must set") as error:
        load_site_settings(node_config)

    assert NODE_CONFIG_KEYS[missing] in str(error.value)


def test_a_site_must_declare_its_classes(tmp_path):
    with pytest.raises(UserError, match="data.options.class_names"):
        load_site_settings(complete())


def test_no_privacy_only_when_the_site_writes_it(tmp_path):
    site_config = write_site_yaml(tmp_path, data={"options": {"classes": ["a"]}})["site-config"]

    settings = load_site_settings(
        complete(**{"site-config": site_config, "data-format": "csv", "target-epsilon": ".inf"})
    )

    assert settings.privacy.target_epsilon == float("inf")


def test_the_gdp_accountant_is_not_accepted(tmp_path):
    site_config = write_site_yaml(tmp_path, **CLASSES_ONLY)["site-config"]

    with pytest.raises(UserError, match="accountant must be one of rdp, prv"):
        load_site_settings(complete(**{"site-config": site_config, "accountant": "gdp"}))


@pytest.mark.parametrize(
    "settings, fragment",
    [
        (
            {"data": {"path": "x.npz"}, "privacy": {"max_epsilon": -1}},
            "privacy.max_epsilon must be > 0",
        ),
        (
            {"data": {"path": "x.npz"}, "privacy": {"epsilon": 1}},
            "unknown config key privacy.epsilon",
        ),
        ({"data": {"path": "x.npz", "format": "jpeg"}}, "data.format must be one of"),
        ({"data": {"path": "x.npz"}, "privacy": {"unit": "person"}}, "privacy.unit must be one of"),
        ({"privacy": {"max_epsilon": 1}}, "data path is not set"),
        (
            {"data": {"path": "x.npz"}, "privacy": {"target_epsilon": 5, "max_epsilon": 2}},
            "max_epsilon must be >= target_epsilon",
        ),
        ({"data": {"path": "x.npz"}, "device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ],
)
def test_mistakes_in_site_yaml_name_the_file_and_key(tmp_path, settings, fragment):
    node_config = write_site_yaml(tmp_path, **settings)

    with pytest.raises(UserError, match=fragment) as error:
        load_site_settings(node_config)

    assert node_config["site-config"] in str(error.value)


def test_unknown_node_config_keys_list_the_valid_ones():
    with pytest.raises(UserError, match="unknown node config key data-dir; valid keys: site-"):
        load_site_settings({"data-dir": "/x"})


def test_a_missing_site_yaml_is_named():
    with pytest.raises(UserError, match="/no/site.yaml does not exist"):
        load_site_settings({"site-config": "/no/site.yaml"})


def test_the_site_reads_its_data_only_as_its_own_settings_say(tmp_path):
    options = {"class_names": ["a", "b"], "patient_pattern": "^(?P<patient>.+)_"}
    site_config = write_site_yaml(tmp_path, data={"options": options})["site-config"]
    settings = load_site_settings(
        complete(**{"site-config": site_config, "data-path": "/h/scans", "data-format": "folder"})
    )
    federation = {
        "source": "folder",
        "resolution": 28,
        "holdout_fraction": 0.1,
        "holdout_split": "",
        "folder": {"path": "server", "patient_pattern": "^(?!00012345_)(?P<patient>.+)_"},
    }

    section = site_data_section(settings, federation)

    # The server's holdout is not taken: a deployed site trains on its own units.
    assert section == {
        "source": "folder",
        "resolution": 28,
        "folder": {
            "class_names": ["a", "b"],
            "patient_pattern": "^(?P<patient>.+)_",
            "path": "/h/scans",
        },
    }
