"""Architecture `resnet`: residual generator and discriminator (after Miyato et al. 2018's
SN-GAN, without its spectral or batch normalisation).

The generator's blocks normalise with class-conditional GroupNorm (one scale and shift per
channel from the condition, one-hot or multi-hot): per image, so it acts the same in training
and in eval mode and a site's copies average cleanly. The discriminator has no normalisation
at all: each image's logit depends on that image alone, as DP-SGD's per-sample gradients
require; residual connections and average pooling keep it trainable without.
"""

import torch
from torch import nn
from torch.nn import functional as F

from common.config import ModelConfig
from common.models.dcgan import LEAK, levels
from common.models.registry import ARCHITECTURES, Architecture

GROUPS = 8


class ConditionalGroupNorm(nn.Module):
    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(GROUPS, channels), channels, affine=False)
        self.scale = nn.Linear(num_classes, channels)
        self.shift = nn.Linear(num_classes, channels)
        for layer in (self.scale, self.shift):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale = 1 + self.scale(condition)[:, :, None, None]
        return self.norm(x) * scale + self.shift(condition)[:, :, None, None]


class GeneratorBlock(nn.Module):
    """Norm, activation, 2x upsampling, 3x3 convolution, twice; a 1x1-convolved upsampled
    copy of the input added."""

    def __init__(self, c_in: int, c_out: int, num_classes: int, upsampling: str) -> None:
        super().__init__()
        # Transposed convolutions leave checkerboards; a residual block upsamples by
        # interpolation either way.
        self.mode = "bilinear" if upsampling == "bilinear" else "nearest"
        self.norm1 = ConditionalGroupNorm(c_in, num_classes)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = ConditionalGroupNorm(c_out, num_classes)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode=self.mode)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self._up(F.leaky_relu(self.norm1(x, condition), LEAK)))
        h = self.conv2(F.leaky_relu(self.norm2(h, condition), LEAK))
        return h + self.skip(self._up(x))


class ResidualGenerator(nn.Module):
    """z + condition -> image in [-1, 1], shape (N, 1, R, R); widest at the coarsest level."""

    def __init__(
        self, num_classes: int, latent_dim: int, width: int, resolution: int, upsampling: str
    ) -> None:
        super().__init__()
        base, ups = levels(resolution)
        channels = [max(width * 2 ** (ups - i), 8) for i in range(ups + 1)]
        self.latent_dim = latent_dim
        self.base = base
        self.embed = nn.Linear(num_classes, latent_dim, bias=False)
        self.project = nn.Linear(2 * latent_dim, channels[0] * base * base)
        self.blocks = nn.ModuleList(
            GeneratorBlock(c_in, c_out, num_classes, upsampling)
            for c_in, c_out in zip(channels, channels[1:])
        )
        self.norm = ConditionalGroupNorm(channels[-1], num_classes)
        self.out = nn.Conv2d(channels[-1], 1, 3, padding=1)
        self.channels0 = channels[0]

    def input_parameters(self) -> list[nn.Parameter]:
        """The weights that map (z, condition) to the first feature map."""
        return [*self.embed.parameters(), *self.project.parameters()]

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, self.embed(condition)], dim=1))
        h = h.view(-1, self.channels0, self.base, self.base)
        for block in self.blocks:
            h = block(h, condition)
        return torch.tanh(self.out(F.leaky_relu(self.norm(h, condition), LEAK)))


class DiscriminatorBlock(nn.Module):
    """(Activation,) 3x3 convolution, activation, 3x3 convolution, 2x average pooling; a
    1x1-convolved pooled copy of the input added. The first block sees raw pixels and skips
    the leading activation."""

    def __init__(self, c_in: int, c_out: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.leaky_relu(x, LEAK)
        h = self.conv2(F.leaky_relu(self.conv1(h), LEAK))
        return F.avg_pool2d(h, 2) + self.skip(F.avg_pool2d(x, 2))


class ResidualDiscriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018) on residual features summed over
    positions: logit = psi(h) + <embed(c), h>."""

    def __init__(self, num_classes: int, width: int, resolution: int) -> None:
        super().__init__()
        _, downs = levels(resolution)
        channels = [1] + [width * 2**i for i in range(downs)]
        self.blocks = nn.Sequential(
            *(
                DiscriminatorBlock(c_in, c_out, first=i == 0)
                for i, (c_in, c_out) in enumerate(zip(channels, channels[1:]))
            )
        )
        self.score = nn.Linear(channels[-1], 1)
        self.embed = nn.Linear(num_classes, channels[-1], bias=False)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.encode(image)
        return self.score(h).squeeze(1) + (self.embed(condition) * h).sum(dim=1)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.blocks(image), LEAK).sum(dim=(2, 3))

    def encoder(self) -> nn.Module:
        """Image -> the features h the score and projection read."""
        return _Encoder(self)


class _Encoder(nn.Module):
    def __init__(self, discriminator: ResidualDiscriminator) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.discriminator.encode(image)


def _build_generator(num_classes: int, resolution: int, model: ModelConfig) -> ResidualGenerator:
    return ResidualGenerator(
        num_classes, model.latent_dim, model.generator_width, resolution, model.generator_upsampling
    )


def _build_discriminator(
    num_classes: int, resolution: int, model: ModelConfig
) -> ResidualDiscriminator:
    return ResidualDiscriminator(num_classes, model.discriminator_width, resolution)


ARCHITECTURES.register("resnet")(Architecture(_build_generator, _build_discriminator))
