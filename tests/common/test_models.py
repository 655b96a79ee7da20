import pytest
import torch
from opacus.validators import ModuleValidator

from common import config
from common.config import ModelConfig
from common.errors import UserError
from common.models import (
    ARCHITECTURES,
    Generator,
    GeneratorMixture,
    build_discriminator,
    build_models,
)
from common.models.weight_average import WeightAverage


def _model(architecture: str) -> ModelConfig:
    return ModelConfig(
        architecture=architecture, latent_dim=16, generator_width=16, discriminator_width=8
    )


def test_the_registry_holds_the_architectures_the_config_accepts():
    assert ARCHITECTURES.names() == sorted(config.ARCHITECTURES)
    with pytest.raises(UserError, match="valid choices: dcgan, resnet"):
        ARCHITECTURES.get("vit")


@pytest.mark.parametrize("architecture", config.ARCHITECTURES)
@pytest.mark.parametrize("resolution", [28, 32, 64, 128])
def test_shapes_at_every_resolution(architecture, resolution):
    generator, discriminator = build_models(3, resolution, _model(architecture))
    z, condition = torch.randn(5, 16), torch.eye(3)[[0, 1, 2, 0, 1]]

    images = generator(z, condition)
    logits = discriminator(images, condition)

    assert images.shape == (5, 1, resolution, resolution)
    assert images.abs().max() <= 1
    assert logits.shape == (5,)


@pytest.mark.parametrize("architecture", config.ARCHITECTURES)
def test_discriminator_passes_opacus_validation(architecture):
    discriminator = build_discriminator(4, 32, _model(architecture))

    assert ModuleValidator.validate(discriminator, strict=False) == []


@pytest.mark.parametrize("architecture", config.ARCHITECTURES)
@pytest.mark.parametrize("train_mode", [True, False])
def test_one_samples_output_ignores_the_rest_of_its_batch(architecture, train_mode):
    torch.manual_seed(0)
    discriminator = build_discriminator(4, 32, _model(architecture)).train(train_mode)
    images, condition = torch.randn(8, 1, 32, 32), torch.eye(4)[torch.randint(0, 4, (8,))]
    other_images = images.clone()
    other_images[1:] = torch.randn(7, 1, 32, 32) * 5
    other_condition = condition.clone()
    other_condition[1:] = 1.0

    first = discriminator(images, condition)[0]
    again = discriminator(other_images, other_condition)[0]
    alone = discriminator(images[:1], condition[:1])[0]

    assert torch.allclose(first, again, atol=1e-6)
    assert torch.allclose(first, alone, atol=1e-6)


def test_a_batchnorm_discriminator_would_fail_the_same_check():
    torch.manual_seed(0)
    mixing = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4)).train()
    images = torch.randn(8, 1, 8, 8)
    other = images.clone()
    other[1:] *= 5

    assert not torch.allclose(mixing(images)[0], mixing(other)[0], atol=1e-6)
    assert ModuleValidator.validate(mixing, strict=False) != []


@pytest.mark.parametrize("architecture", config.ARCHITECTURES)
@pytest.mark.parametrize("upsampling", ["transposed", "nearest", "bilinear"])
def test_generator_is_conditional(architecture, upsampling):
    torch.manual_seed(0)
    model = ModelConfig(
        architecture=architecture, latent_dim=8, generator_width=8, generator_upsampling=upsampling
    )
    generator, _ = build_models(2, 28, model)
    z = torch.randn(1, 8)

    assert not torch.allclose(
        generator(z, torch.tensor([[1.0, 0]])), generator(z, torch.tensor([[0, 1.0]]))
    )


@pytest.mark.parametrize("architecture", config.ARCHITECTURES)
def test_the_generators_input_layers_are_the_condition_embedding_and_latent_projection(
    architecture,
):
    generator, _ = build_models(2, 28, ModelConfig(architecture=architecture, latent_dim=8))

    inputs = generator.input_parameters()

    named = {name for name, p in generator.named_parameters() if any(p is q for q in inputs)}
    assert named == {"embed.weight", "project.weight", "project.bias"}


def test_a_mixture_gives_every_component_its_share_and_standard_normal_latents():
    components = [Generator(2, 8, 8, 28, "bilinear") for _ in range(3)]
    mixture = GeneratorMixture(components, 28)
    z = torch.randn(30000, 8, generator=torch.Generator().manual_seed(0))

    index, seen = mixture.assign(z)

    shares = torch.bincount(index, minlength=3) / len(z)
    assert torch.allclose(shares, torch.full((3,), 1 / 3), atol=0.01)
    for k in range(3):
        first = seen[index == k, 0]
        assert abs(first.mean()) < 0.03 and abs(first.std() - 1) < 0.03
    assert torch.equal(seen[:, 1:], z[:, 1:])


def test_a_mixtures_image_is_its_components_image_of_the_same_latent():
    torch.manual_seed(0)
    mixture = GeneratorMixture([Generator(2, 8, 8, 28, "bilinear") for _ in range(2)], 28)
    z, condition = torch.randn(40, 8), torch.eye(2)[torch.arange(40) % 2]

    images = mixture(z, condition)

    index, seen = mixture.assign(z)
    for k, component in enumerate(mixture.components):
        rows = index == k
        assert rows.any()
        assert torch.allclose(images[rows], component(seen[rows], condition[rows]))
    assert torch.allclose(images[:5], mixture(z[:5], condition[:5]), atol=1e-5)  # no batch


def test_a_weight_average_moves_towards_each_new_weight_by_one_minus_the_decay():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    average = WeightAverage(model, decay=0.75)

    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update()
    after_one = average.model.weight.item()
    average.update()

    assert after_one == pytest.approx(0.25)
    assert average.model.weight.item() == pytest.approx(0.4375)
    assert model.weight.item() == 1.0
