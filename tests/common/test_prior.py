"""Public priors: built from public images without privacy, written with their provenance,
checked against the config, and loaded so that every class starts as the public films."""

import hashlib
import json

import numpy as np
import pytest
import torch

from cli.main import main
from common.config import PRESET_DIR, config_from_dict, load_config
from common.data.federation import label_space
from common.data.phantom import FINDINGS
from common.errors import UserError
from common.models import build_discriminator, build_models
from common.prior.file import (
    PRIOR_DIR,
    PROVENANCE,
    WEIGHTS,
    load_prior,
    prior_hash,
    start_from,
    start_from_discriminator,
)
from tests.helpers.priors import LABELLED, TINY_MODEL, build_prior


def config_for(prior, *settings, resolution=28):
    return config_from_dict(
        {"data": {"resolution": resolution}},
        [*TINY_MODEL, f"model.prior={prior}", *settings],
    )


def test_build_writes_weights_and_provenance(tmp_path, capsys):
    public, out = build_prior(tmp_path)

    provenance = json.loads((out / PROVENANCE).read_text())
    assert (out / WEIGHTS).is_file()
    assert provenance["public_data"]["sha256"] == hashlib.sha256(public.read_bytes()).hexdigest()
    assert provenance["public_data"]["licence"] == "CC BY-SA 4.0"
    assert provenance["resolution"] == 28 and provenance["channels"] == 1
    assert provenance["model"]["generator_width"] == 8
    assert provenance["model"]["architecture"] == "dcgan"
    assert provenance["training"]["steps"] == 2
    assert provenance["command"].startswith("privsynth prior build ")
    assert "--set model.generator_width=8" in provenance["command"]
    assert len(provenance["commit"].split("+")[0]) in (40, len("unknown"))
    assert prior_hash(out) in capsys.readouterr().out


def test_a_prior_with_a_weight_average_records_it_and_stores_the_average(tmp_path):
    # 8 discriminator steps: the quickstart training takes a generator step every 4.
    _, last = build_prior(tmp_path, name="last", options=("--steps", "8"))
    _, averaged = build_prior(
        tmp_path, name="averaged", options=("--steps", "8", "--generator-ema", "0.5")
    )

    provenance = json.loads((averaged / PROVENANCE).read_text())
    assert provenance["training"]["generator_ema"] == 0.5
    assert "--generator-ema 0.5" in provenance["command"]
    assert json.loads((last / PROVENANCE).read_text())["training"]["generator_ema"] == 0.0
    last_weights = torch.load(last / WEIGHTS)["generator"]
    averaged_weights = torch.load(averaged / WEIGHTS)["generator"]
    assert not torch.equal(last_weights["project.weight"], averaged_weights["project.weight"])
    assert torch.equal(
        torch.load(last / WEIGHTS)["discriminator"]["score.weight"],
        torch.load(averaged / WEIGHTS)["discriminator"]["score.weight"],
    )


@pytest.mark.parametrize("decay", ["1", "-0.1"])
def test_a_weight_average_decay_outside_zero_to_one_is_one_error(tmp_path, capsys, decay):
    public, _ = build_prior(tmp_path)
    capsys.readouterr()  # the build's progress
    argv = ["prior", "build", str(public), "--out", str(tmp_path / "averaged")]
    argv += ["--resolution", "28", "--licence", "CC0", "--steps", "2", "--generator-ema", decay]

    code = main(argv)

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("privsynth: error: --generator-ema must be in [0, 1)")
    assert "\n" not in err


@pytest.mark.parametrize("architecture", ["dcgan", "resnet"])
def test_every_class_starts_as_the_public_prior(tmp_path, architecture):
    _, out = build_prior(tmp_path, f"model.architecture={architecture}")
    config = config_for(out, f"model.architecture={architecture}")
    prior = load_prior(config.model.prior, config)
    generator, discriminator = build_models(3, 28, config.model)

    start_from(prior, generator, discriminator, class_names=("a", "b", "c"), multi_label=False)

    for key, value in prior.generator.items():
        assert torch.equal(generator.state_dict()[key], value)
    for key, value in prior.discriminator.items():
        assert torch.equal(discriminator.state_dict()[key], value)
    z = torch.randn(5, config.model.latent_dim)
    one_hot = torch.eye(3)[[0, 1, 2, 0, 1]]
    generator.eval()
    with torch.no_grad():
        images = generator(z, one_hot)
        assert torch.allclose(images, generator(z, torch.zeros(5, 3)))
        assert torch.allclose(
            discriminator(images, one_hot), discriminator(images, torch.ones(5, 3))
        )
        assert not torch.allclose(images[0], images[1])


def test_a_labelled_prior_keeps_what_it_learnt_of_each_class(tmp_path):
    _, out = build_prior(tmp_path, options=LABELLED)
    config = config_for(out)
    prior = load_prior(config.model.prior, config)
    generator, discriminator = build_models(len(FINDINGS), 28, config.model)

    start_from(prior, generator, discriminator, class_names=FINDINGS, multi_label=True)

    provenance = json.loads((out / PROVENANCE).read_text())
    assert provenance["conditioning"] == {"classes": list(FINDINGS), "multi_label": True}
    assert "--classes opacity,cardiomegaly,effusion,nodule --multi-label" in provenance["command"]
    assert prior.classes == FINDINGS and prior.multi_label
    assert prior.condition_keys["generator"] <= set(prior.generator)
    for part, module in (("generator", generator), ("discriminator", discriminator)):
        for key, value in getattr(prior, part).items():
            assert torch.equal(module.state_dict()[key], value)
    z = torch.randn(2, config.model.latent_dim)
    generator.eval()
    with torch.no_grad():
        nodule = generator(z, torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 2))
        assert not torch.allclose(nodule, generator(z, torch.zeros(2, 4)))


@pytest.mark.parametrize(
    "class_names, multi_label",
    [(("normal", "pneumonia"), False), (FINDINGS, False), (FINDINGS[:3], True)],
)
def test_a_labelled_prior_for_other_classes_is_one_error(tmp_path, class_names, multi_label):
    _, out = build_prior(tmp_path, options=LABELLED)
    config = config_for(out)
    prior = load_prior(config.model.prior, config)
    generator, discriminator = build_models(len(class_names), 28, config.model)

    with pytest.raises(
        UserError, match="model.prior: .* is labelled with the multi-label"
    ) as error:
        start_from(
            prior, generator, discriminator, class_names=class_names, multi_label=multi_label
        )

    assert "opacity, cardiomegaly, effusion, nodule" in str(error.value)
    assert ", ".join(class_names) in str(error.value)


def test_a_labelled_prior_for_other_findings_fails_the_dry_run(tmp_path, capsys):
    _, out = build_prior(tmp_path, options=LABELLED)
    capsys.readouterr()  # the build's progress
    argv = ["run", "quickstart", "--dry-run", "--set", "data.resolution=28"]
    for setting in [*TINY_MODEL, f"model.prior={out}", "data.phantom.findings=[nodule]"]:
        argv += ["--set", setting]

    code = main(argv)

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"privsynth: error: model.prior: {out} is labelled with")
    assert "the data's classes are nodule" in err and "\n" not in err


def test_the_encoder_of_a_labelled_prior_reads_no_condition(tmp_path):
    _, out = build_prior(tmp_path, options=LABELLED)
    config = config_for(out)
    prior = load_prior(config.model.prior, config)
    encoder = build_discriminator(1, 28, config.model)

    start_from_discriminator(prior, encoder)

    for key in set(prior.discriminator) - prior.condition_keys["discriminator"]:
        assert torch.equal(encoder.state_dict()[key], prior.discriminator[key])


@pytest.mark.parametrize(
    "labels, options, fragment",
    [
        (None, LABELLED, "has no `labels` beside `images`"),
        (np.ones((12, 3), np.uint8), LABELLED, "expected (12, 4) of 0 and 1"),
        (np.full((12, 1), 4, np.uint8), ("--classes", "a,b,c,d"), "one class index in 0..3"),
        (np.zeros((12, 1), np.uint8), ("--classes", "a,a"), "distinct, non-empty class names"),
        (np.zeros((12, 1), np.uint8), ("--multi-label",), "--multi-label needs --classes"),
    ],
)
def test_public_labels_that_do_not_fit_the_classes_are_one_error(
    tmp_path, capsys, labels, options, fragment
):
    public = tmp_path / "public.npz"
    images = np.zeros((12, 28, 28), np.uint8)
    np.savez(public, images=images, **({} if labels is None else {"labels": labels}))
    argv = ["prior", "build", str(public), "--out", str(tmp_path / "prior"), "--resolution"]
    argv += ["28", "--licence", "CC0", "--steps", "2", *options]

    code = main(argv)

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("privsynth: error: ") and fragment in err
    assert "\n" not in err


def test_the_hash_changes_with_the_weights(tmp_path):
    _, first = build_prior(tmp_path, name="first")
    _, second = build_prior(tmp_path, "training.generator_lr=0.01", name="second")

    assert prior_hash(first) != prior_hash(second)


@pytest.mark.parametrize(
    "settings, resolution, fragment",
    [
        ((), 32, "data.resolution=28, but the config has data.resolution=32"),
        (("model.generator_width=16",), 28, "model.generator_width=8"),
        (("model.architecture=resnet",), 28, "model.architecture=dcgan"),
    ],
)
def test_a_prior_that_does_not_fit_is_one_error(tmp_path, settings, resolution, fragment):
    _, out = build_prior(tmp_path)
    config = config_for(out, *settings, resolution=resolution)

    with pytest.raises(UserError, match="model.prior: .*") as error:
        load_prior(config.model.prior, config)

    assert fragment in str(error.value)
    assert str(out) in str(error.value)


def test_a_missing_prior_is_one_error_line_at_dry_run(tmp_path, capsys):
    missing = tmp_path / "no-such-prior"

    code = main(["run", "quickstart", "--dry-run", "--set", f"model.prior={missing}"])

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("privsynth: error: model.prior:")
    assert str(missing) in err and "\n" not in err


def test_dry_run_names_the_prior_and_its_hash(tmp_path, capsys):
    _, out = build_prior(tmp_path, "model.generator_upsampling=nearest")
    settings = [*TINY_MODEL, "model.generator_upsampling=nearest", f"model.prior={out}"]
    argv = ["run", "quickstart", "--dry-run", "--set", "data.resolution=28"]
    for setting in settings:
        argv += ["--set", setting]

    assert main(argv) == 0

    assert f"prior: {out} (sha256 {prior_hash(out)})" in capsys.readouterr().out


def test_no_prior_is_the_default_and_said_at_dry_run(capsys):
    assert config_from_dict({}).model.prior == ""
    assert main(["run", "quickstart", "--dry-run", "--set", "model.prior="]) == 0
    assert "prior: none" in capsys.readouterr().out


@pytest.mark.parametrize("classes", [["nodule"], {"names": "nodule", "multi_label": True}])
def test_a_labelled_prior_with_a_damaged_class_record_is_one_error(tmp_path, classes):
    _, out = build_prior(tmp_path, options=LABELLED)
    weights = torch.load(out / WEIGHTS)
    weights["classes"] = classes
    torch.save(weights, out / WEIGHTS)
    config = config_for(out)

    with pytest.raises(UserError, match=f"model.prior: {out} is not a prior of format"):
        load_prior(config.model.prior, config)


def test_a_corrupt_prior_is_one_error(tmp_path):
    _, out = build_prior(tmp_path)
    (out / WEIGHTS).write_bytes(b"not a torch file")
    config = config_for(out)

    with pytest.raises(UserError, match="cannot read the prior"):
        load_prior(config.model.prior, config)


PRESETS_WITH_A_PRIOR = sorted(
    p.stem for p in PRESET_DIR.glob("*.yaml") if load_config(p.stem).model.prior
)


def test_the_pneumoniamnist_presets_and_the_demo_name_a_prior():
    assert {
        "demo",
        "quickstart",
        "pneumoniamnist",
        "pneumoniamnist-eps1",
        "pneumoniamnist-dpgan",
    } <= set(PRESETS_WITH_A_PRIOR)


@pytest.mark.parametrize("preset", PRESETS_WITH_A_PRIOR)
def test_a_preset_names_a_shipped_prior_that_fits_it_with_its_provenance(preset):
    config = load_config(preset)

    prior = load_prior(config.model.prior, config)

    public = prior.provenance["public_data"]
    assert prior.folder.parent == PRIOR_DIR
    assert len(public["sha256"]) == 64 and public["licence"].strip()
    assert prior.provenance["resolution"] == config.data.resolution
    class_names, multi_label = label_space(config)  # every preset declares its classes
    generator, discriminator = build_models(len(class_names), config.data.resolution, config.model)
    start_from(prior, generator, discriminator, class_names=class_names, multi_label=multi_label)
