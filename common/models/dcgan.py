"""Architecture `dcgan`: a class-conditional generator of upsampling convolutions and a
DP-safe projection discriminator of strided convolutions, for grayscale images.

The discriminator has no BatchNorm or any other layer that mixes samples, so per-sample
gradients (and therefore DP-SGD) are well defined. The generator never sees private data
and may use any normalisation; PixelNorm keeps it identical in train and eval mode.
"""

import math

import torch
from torch import nn

from common.config import UPSAMPLING, ModelConfig
from common.models.registry import ARCHITECTURES, Architecture

LEAK = 0.2


def levels(resolution: int) -> tuple[int, int]:
    """(base size, number of 2x resamplings) for 28 = 7*4 and powers of two >= 8."""
    base = 7 if resolution % 7 == 0 else 4
    steps = math.log2(resolution / base)
    if steps != int(steps) or steps < 1:
        raise ValueError(f"unsupported resolution {resolution}")
    return base, int(steps)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def _upsample(kind: str, c_in: int, c_out: int) -> list[nn.Module]:
    """2x upsampling. Transposed 4x4 stride-2 convolutions are cheaper; nearest-neighbour or
    bilinear upsampling + 3x3 convolution cannot leave checkerboard patterns (Odena et al.
    2016), and bilinear cannot leave blocks either: a smoothness prior where the training
    signal says little about the fine detail."""
    if kind == "transposed":
        return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
    if kind in ("nearest", "bilinear"):
        return [nn.Upsample(scale_factor=2, mode=kind), nn.Conv2d(c_in, c_out, 3, padding=1)]
    raise ValueError(f"unknown upsampling {kind!r}; choose one of {', '.join(UPSAMPLING)}")


class Generator(nn.Module):
    """z + condition (one-hot or multi-hot) -> image in [-1, 1], shape (N, 1, R, R)."""

    def __init__(
        self,
        num_classes: int,
        latent_dim: int,
        width: int,
        resolution: int,
        upsampling: str = "transposed",
    ) -> None:
        super().__init__()
        base, ups = levels(resolution)
        # Widest at the coarsest level, halving per upsampling: cheap at full resolution.
        channels = [max(width * 2 ** (ups - 1 - i), 8) for i in range(ups)] + [max(width // 2, 8)]
        self.latent_dim = latent_dim
        self.base = base
        self.embed = nn.Linear(num_classes, latent_dim, bias=False)
        self.project = nn.Linear(2 * latent_dim, channels[0] * base * base)
        blocks: list[nn.Module] = [PixelNorm(), nn.LeakyReLU(LEAK)]
        for c_in, c_out in zip(channels, channels[1:]):
            blocks += [*_upsample(upsampling, c_in, c_out), PixelNorm(), nn.LeakyReLU(LEAK)]
        blocks += [nn.Conv2d(channels[-1], 1, 3, padding=1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)
        self.channels0 = channels[0]

    def input_parameters(self) -> list[nn.Parameter]:
        """The weights that map (z, condition) to the first feature map."""
        return [*self.embed.parameters(), *self.project.parameters()]

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, self.embed(condition)], dim=1))
        return self.body(h.view(-1, self.channels0, self.base, self.base))


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): logit = psi(h) + <embed(c), h>.

    The projection works for one-hot and multi-hot conditions alike.
    """

    def __init__(self, num_classes: int, width: int, resolution: int) -> None:
        super().__init__()
        base, downs = levels(resolution)
        # DCGAN-style strided convolutions: small, so DP noise is spread over few weights.
        channels = [1] + [width * 2**i for i in range(downs)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(LEAK)]
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        feature_dim = channels[-1] * base * base
        self.score = nn.Linear(feature_dim, 1)
        self.embed = nn.Linear(num_classes, feature_dim, bias=False)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.features(image)
        return self.score(h).squeeze(1) + (self.embed(condition) * h).sum(dim=1)

    def encoder(self) -> nn.Module:
        """Image -> the features h the score and projection read."""
        return self.features


def _build_generator(num_classes: int, resolution: int, model: ModelConfig) -> Generator:
    return Generator(
        num_classes, model.latent_dim, model.generator_width, resolution, model.generator_upsampling
    )


def _build_discriminator(num_classes: int, resolution: int, model: ModelConfig) -> Discriminator:
    return Discriminator(num_classes, model.discriminator_width, resolution)


ARCHITECTURES.register("dcgan")(Architecture(_build_generator, _build_discriminator))
