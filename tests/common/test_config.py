import math

import pytest

from common.config import (
    PRESET_DIR,
    Config,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    load_config,
    resolve_config_path,
)
from common.errors import UserError


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
def test_every_preset_parses_and_round_trips(preset):
    config = load_config(preset)

    again = config_from_dict(config_to_dict(config))

    assert again == config


def test_defaults_are_the_embedded_phantom_demo():
    config = Config()

    assert config.data.source == "phantom"
    assert config.federation.num_sites == 3
    assert config.data.options.num_patients >= 1


def test_override_sets_nested_key_with_yaml_typing():
    config = config_from_dict({}, ["privacy.target_epsilon=3", "federation.rounds=7"])

    assert config.privacy.target_epsilon == 3.0
    assert config.federation.rounds == 7


def test_infinite_epsilon_means_non_private():
    config = config_from_dict({}, ["privacy.target_epsilon=inf"])

    assert math.isinf(config.privacy.target_epsilon)
    assert not config.private


@pytest.mark.parametrize(
    "raw, overrides, fragments",
    [
        ({"privacy": {"epsilon": 3}}, [], ["privacy.epsilon", "target_epsilon"]),
        ({"trainig": {}}, [], ["trainig", "training"]),
        ({}, ["federation.rounds=many"], ["federation.rounds", "int"]),
        ({}, ["privacy.target_epsilon=0"], ["privacy.target_epsilon", "> 0"]),
        ({}, ["privacy.target_epsilon=-1"], ["privacy.target_epsilon"]),
        ({}, ["privacy.delta=1"], ["privacy.delta", "(0, 1)"]),
        ({}, ["privacy.unit=hospital"], ["privacy.unit", "image", "patient"]),
        ({}, ["data.source=imagenet"], ["data.source", "phantom", "medmnist", "csv", "folder"]),
        ({}, ["data.resolution=48"], ["data.resolution", "28", "128"]),
        ({}, ["federation.partition=random"], ["federation.partition", "by-patient"]),
        ({}, ["data.phantom.num_patients=0"], ["data.phantom.num_patients"]),
        ({"data": {"source": "phantom", "medmnist": {"path": "x"}}}, [], ["data.medmnist"]),
        ({"data": {"source": "medmnist"}}, [], ["data.medmnist.path"]),
        ({}, ["privacy.sites=[{target_epsilon: 1}]"], ["privacy.sites", "num_sites"]),
        ({}, ["federation.min_sites=5"], ["federation.min_sites"]),
        ({}, ["model.generator_upsampling=bicubic"], ["generator_upsampling", "bilinear"]),
        ({}, ["training.generator_step_threshold=1.5"], ["generator_step_threshold"]),
        ({}, ["model.generator_components=0"], ["model.generator_components", ">= 1"]),
        (
            {},
            ["model.generator_components=3"],
            ["model.generator_components", "training.method=mean_embedding"],
        ),
        ({}, ["mean_embedding.bandwidth=[0.25, 0]"], ["mean_embedding.bandwidth", "> 0"]),
        ({}, ["mean_embedding.bandwidth=[]"], ["mean_embedding.bandwidth", "non-empty"]),
        ({}, ["mean_embedding.bandwidth=wide"], ["mean_embedding.bandwidth", "float"]),
        ({}, ["mean_embedding.pooling=0"], ["mean_embedding.pooling", ">= 1"]),
        ({}, ["mean_embedding.pooling=3"], ["mean_embedding.pooling", "data.resolution=32"]),
        (
            {},
            ["mean_embedding.bandwidth=[0.5, 0.25]", "mean_embedding.pooling=[1, 2, 4]"],
            ["mean_embedding.pooling", "3 values for 2 bandwidths"],
        ),
        ({}, ["mean_embedding.detail=1"], ["mean_embedding.detail", ">= 2"]),
        ({}, ["mean_embedding.detail=3"], ["mean_embedding.detail", "data.resolution=32"]),
        (
            {},
            ["mean_embedding.bandwidth=[0.5, 0.25]", "mean_embedding.detail=[0, 2, 2]"],
            ["mean_embedding.detail", "3 values for 2 bandwidths"],
        ),
        (
            {},
            ["mean_embedding.pooling=2", "mean_embedding.detail=2"],
            ["mean_embedding.detail", "pooling to 1"],
        ),
        ({}, ["mean_embedding.gradient=2"], ["mean_embedding.gradient", "0 or 1"]),
        ({}, ["mean_embedding.count_share=1"], ["mean_embedding.count_share", "between 0 and 1"]),
        ({}, ["mean_embedding.generator_ema=1"], ["mean_embedding.generator_ema", "[0, 1)"]),
        ({}, ["mean_embedding.generator_layers=body"], ["generator_layers", "all", "input"]),
        (
            {},
            ["model.prior=", "mean_embedding.generator_layers=input"],
            ["mean_embedding.generator_layers", "model.prior"],
        ),
        (
            {},
            ["mean_embedding.bandwidth=[0.5, 0.25]", "mean_embedding.gradient=[1]"],
            ["mean_embedding.gradient", "1 values for 2 bandwidths"],
        ),
        (
            {},
            ["mean_embedding.detail=2", "mean_embedding.gradient=1"],
            ["mean_embedding.gradient", "detail to 0"],
        ),
        (
            {},
            ["mean_embedding.bandwidth=[0.5, 0.25]", "mean_embedding.frequencies=1"],
            ["mean_embedding.frequencies", "bandwidths"],
        ),
    ],
)
def test_bad_config_names_the_key(raw, overrides, fragments):
    with pytest.raises(UserError) as error:
        config_from_dict(raw, overrides)

    for fragment in fragments:
        assert fragment in str(error.value)


def test_patient_unit_on_source_without_patient_ids_is_an_error():
    raw = {"data": {"source": "medmnist", "medmnist": {"path": "x.npz"}}}

    with pytest.raises(UserError, match="patient IDs"):
        config_from_dict(raw, ["privacy.unit=patient", "federation.partition=by-patient"])


@pytest.mark.parametrize("partition", ["iid", "dirichlet"])
def test_patient_unit_needs_patient_disjoint_sites(partition):
    raw = {"data": {"source": "phantom"}, "federation": {"partition": partition}}

    with pytest.raises(UserError, match="privacy.unit .*federation.partition"):
        config_from_dict(raw, ["privacy.unit=patient"])


def test_the_gdp_accountant_is_a_config_error():
    with pytest.raises(UserError, match="privacy.accountant must be one of rdp, prv"):
        config_from_dict({}, ["privacy.accountant=gdp"])


def test_per_site_budgets():
    config = config_from_dict(
        {}, ["privacy.sites=[{target_epsilon: 1}, {target_epsilon: 3}, {target_epsilon: 10}]"]
    )

    assert [config.site_budget(i).target_epsilon for i in range(3)] == [1.0, 3.0, 10.0]


def test_unknown_preset_lists_presets():
    with pytest.raises(UserError, match="quickstart"):
        resolve_config_path("no-such-preset")


def test_resolved_yaml_reloads(tmp_path):
    path = tmp_path / "resolved.yaml"
    path.write_text(config_to_yaml(config_from_dict({}, ["federation.rounds=4"])))

    assert load_config(str(path)).federation.rounds == 4


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data: [unclosed")

    with pytest.raises(UserError, match="broken.yaml"):
        load_config(str(path))
