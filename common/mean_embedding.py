"""Random Fourier features of a Gaussian kernel on pixels (Rahimi & Recht 2007): the embedding
that DP-MERF (Harder et al. 2021) releases per class and fits the generator to. Several
bandwidths give a mixture of Gaussian kernels (as in MMD GANs, Li et al. 2015): the
frequencies are split between them, so the embedding's dimension and norm stay the same. Each
kernel of the mixture may look at the image average-pooled (the layout), at the image minus
its pooled copy (the fine detail), a multi-resolution kernel, or at the differences between
neighbouring pixels (the edges and texture).

Sites and server build the same features from the config alone (seed, resolution and the
`mean_embedding` section); nothing about them depends on private data.
"""

import math

import torch
from torch import nn

from common.config import Config
from common.models import build_discriminator
from common.prior.file import Prior, load_prior, start_from_discriminator


class RandomFourierFeatures:
    """phi(x) = [cos(Wx), sin(Wx)] / sqrt(F), W ~ N(0, I / length_scale^2): every image's
    embedding has norm exactly 1, and <phi(x), phi(x')> approximates
    exp(-|x - x'|^2 / (2 length_scale^2)), or with several bandwidths the average of those
    kernels. A block with pooling s is the kernel on the image average-pooled over s x s
    pixels: it sees the layout, not the fine detail. A block with detail s is the kernel on
    the image minus its s x s average-pooled copy: it sees the fine detail only. A gradient
    block is the kernel on the finite-difference image [x[:, 1:] - x[:, :-1], x[1:] - x[:-1]]
    (2 R (R - 1) values), with the length scale in units of R as for the whole image: it sees
    edges and texture, not brightness. Images are (N, 1, R, R) or (N, R, R) in [-1, 1]."""

    def __init__(
        self,
        resolution: int,
        frequencies: int,
        bandwidths: tuple[float, ...],
        seed: int,
        poolings: tuple[int, ...] | None = None,
        details: tuple[int, ...] | None = None,
        gradients: tuple[int, ...] | None = None,
    ) -> None:
        poolings = poolings or (1,) * len(bandwidths)
        details = details or (0,) * len(bandwidths)
        gradients = gradients or (0,) * len(bandwidths)
        rng = torch.Generator().manual_seed(seed)
        drawn = torch.randn(resolution**2, frequencies, generator=rng)
        # Contiguous blocks of columns, one per bandwidth, as equal as the count allows.
        block_of_column = torch.arange(frequencies) * len(bandwidths) // frequencies
        blocks = []
        for block, (bandwidth, pooling, detail, gradient) in enumerate(
            zip(bandwidths, poolings, details, gradients)
        ):
            if gradient:
                # Drawn after the pixel frequencies, so kernels without a gradient keep theirs.
                count = int((block_of_column == block).sum())
                drawn_gradient = torch.randn(
                    2 * resolution * (resolution - 1), count, generator=rng
                )
                scaled = drawn_gradient / (bandwidth * resolution)
                blocks.append(_difference_transpose(scaled, resolution))
                continue
            coarse = resolution // pooling
            # A pooled block's weights are a coarse Gaussian draw spread over each s x s
            # square and divided by s^2, so W x is the coarse draw applied to the pooled image.
            weights = drawn[: coarse**2, block_of_column == block] / (bandwidth * coarse)
            weights = weights.view(coarse, coarse, -1)
            weights = weights.repeat_interleave(pooling, 0).repeat_interleave(pooling, 1)
            if detail:
                # w.(x - pooled copy of x) = (w - pooled copy of w).x: the copy is an orthogonal
                # projection, so this is exactly the Gaussian kernel on the detail image.
                weights = weights - _pooled_copy(weights, detail)
            blocks.append(weights.reshape(resolution**2, -1) / pooling**2)
        self.weights = torch.cat(blocks, dim=1)
        self.dim = 2 * frequencies

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return fourier_features(images, self.weights)


def fourier_features(images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    projected = images.flatten(1) @ weights
    scale = 1.0 / math.sqrt(weights.shape[1])
    return torch.cat([projected.cos(), projected.sin()], dim=1) * scale


class PriorFeatures:
    """[sqrt(1 - w) phi(x), sqrt(w) psi(x) / |psi(x)|]: random Fourier features beside a
    public network's features, as DP-MEPF (Harder et al. 2023) embeds with a network trained
    on public data. psi is the prior discriminator's layers before its score (the features
    that tell public films from generated ones); each image's embedding has norm at most 1,
    as with random features alone. The encoder is fixed: it learnt from public images only,
    so the embedding still depends on each image alone."""

    def __init__(
        self, random_features: RandomFourierFeatures, encoder: nn.Module, share: float
    ) -> None:
        self.weights = random_features.weights
        self.encoder = encoder.eval().requires_grad_(False)
        self.fourier_weight, self.encoder_weight = math.sqrt(1.0 - share), math.sqrt(share)
        self.resolution = math.isqrt(self.weights.shape[0])
        with torch.no_grad():
            blank = torch.zeros(1, 1, self.resolution, self.resolution)
            self.dim = random_features.dim + self.encoder(blank).shape[1]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        side = self.resolution
        encoded = self.encoder(images.reshape(-1, 1, side, side)).flatten(1)
        norms = torch.linalg.vector_norm(encoded, dim=1, keepdim=True)
        return torch.cat(
            [
                self.fourier_weight * fourier_features(images, self.weights),
                self.encoder_weight * encoded / norms.clamp(min=1e-12),
            ],
            dim=1,
        )


def _pooled_copy(weights: torch.Tensor, factor: int) -> torch.Tensor:
    """(R, R, F) -> each s x s square replaced by its mean."""
    resolution = weights.shape[0]
    coarse = resolution // factor
    squares = weights.view(coarse, factor, coarse, factor, -1).mean(dim=(1, 3), keepdim=True)
    return squares.expand(-1, factor, -1, factor, -1).reshape(weights.shape)


def _difference_transpose(weights: torch.Tensor, resolution: int) -> torch.Tensor:
    """(2 R (R - 1), F) weights on the finite differences -> (R^2, F) weights on the pixels:
    w.(D x) = (D^T w).x for D x = [horizontal differences, vertical differences]."""
    count = weights.shape[1]
    horizontal, vertical = weights.split(resolution * (resolution - 1))
    horizontal = horizontal.view(resolution, resolution - 1, count)
    vertical = vertical.view(resolution - 1, resolution, count)
    pixels = torch.zeros(resolution, resolution, count)
    pixels[:, 1:] += horizontal
    pixels[:, :-1] -= horizontal
    pixels[1:] += vertical
    pixels[:-1] -= vertical
    return pixels.reshape(resolution**2, count)


def release_weights(dim: int, count_share: float | None = None) -> tuple[float, float]:
    """(a, b), a^2 + b^2 = 1, b^2 = count_share: a site releases each image's [a phi (x) g, b g],
    so the Gaussian mechanism's noise costs the feature sums 1/a^2 and the counts 1/b^2 in
    variance. A group's mean m = sums / count then has squared error about
    (sigma / n)^2 (dim / a^2 + |m|^2 / b^2), smallest at a^2 / b^2 = sqrt(dim) / |m|; with |m|
    at its bound 1 (phi has norm 1), that is b^2 = 1 / (sqrt(dim) + 1), the default. Equal
    weights, as in DP-MERF, cost about twice that error."""
    if count_share is None:
        count_share = 1.0 / (math.sqrt(dim) + 1.0)
    return math.sqrt(1.0 - count_share), math.sqrt(count_share)


def features_for(
    config: Config, *, prior: Prior | None = None
) -> RandomFourierFeatures | PriorFeatures:
    """The embedding the config describes, the same at every site and the server: random
    features, beside the prior's (mean_embedding.prior_features > 0): `prior` if given (a
    site's, already loaded and recorded in its ledger), else the one model.prior names."""
    settings = config.mean_embedding
    random_features = RandomFourierFeatures(
        config.data.resolution,
        settings.frequencies,
        settings.bandwidths,
        config.seed,
        settings.poolings,
        settings.details,
        settings.gradients,
    )
    if not settings.prior_features:
        return random_features
    prior = prior or load_prior(config.model.prior, config)
    return PriorFeatures(
        random_features, prior_encoder(config, prior), share=settings.prior_features
    )


def prior_encoder(config: Config, prior: Prior) -> nn.Module:
    """The prior discriminator's layers before its score."""
    discriminator = build_discriminator(1, config.data.resolution, config.model)
    start_from_discriminator(prior, discriminator)
    return discriminator.encoder()
