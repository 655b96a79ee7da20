"""The model architectures by name (`model.architecture`): each module registers how it builds
a generator and a discriminator from a config's `model` section."""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from common.config import ModelConfig
from common.registry import Registry

# (num_classes, resolution, model section) -> module
Builder = Callable[[int, int, ModelConfig], nn.Module]


@dataclass(frozen=True)
class Architecture:
    generator: Builder
    discriminator: Builder


ARCHITECTURES: Registry[Architecture] = Registry("model architecture")
