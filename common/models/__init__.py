"""Generators and discriminators by architecture (`model.architecture`), one module each;
importing this package registers them all."""

from torch import nn

from common.config import ModelConfig
from common.models import dcgan, resnet  # noqa: F401  (registration)
from common.models.dcgan import Discriminator, Generator
from common.models.mixture import GeneratorMixture, components_of
from common.models.registry import ARCHITECTURES

# What build_generator returns: one generator, or a mixture of them.
AnyGenerator = nn.Module

__all__ = [
    "ARCHITECTURES",
    "AnyGenerator",
    "Discriminator",
    "Generator",
    "GeneratorMixture",
    "build_discriminator",
    "build_generator",
    "build_models",
    "components_of",
]


def build_generator(num_classes: int, resolution: int, model: ModelConfig) -> nn.Module:
    build = ARCHITECTURES.get(model.architecture).generator
    components = [build(num_classes, resolution, model) for _ in range(model.generator_components)]
    return components[0] if len(components) == 1 else GeneratorMixture(components, resolution)


def build_discriminator(num_classes: int, resolution: int, model: ModelConfig) -> nn.Module:
    return ARCHITECTURES.get(model.architecture).discriminator(num_classes, resolution, model)


def build_models(
    num_classes: int, resolution: int, model: ModelConfig
) -> tuple[nn.Module, nn.Module]:
    """The generator and discriminator a config's `model` section describes: the one place
    that maps config keys to architectures, so server, sites and run folders agree."""
    return (
        build_generator(num_classes, resolution, model),
        build_discriminator(num_classes, resolution, model),
    )
