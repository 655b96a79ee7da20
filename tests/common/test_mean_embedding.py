"""The random Fourier features both sides build from the config."""

import math

import pytest
import torch

from common.config import config_from_dict
from common.mean_embedding import RandomFourierFeatures, features_for


def test_every_embedding_has_norm_one():
    features = RandomFourierFeatures(resolution=8, frequencies=50, bandwidths=(0.5,), seed=0)
    images = torch.rand(7, 1, 8, 8) * 2 - 1

    norms = features(images).norm(dim=1)

    assert torch.allclose(norms, torch.ones(7), atol=1e-5)


def test_inner_products_approximate_the_gaussian_kernel():
    features = RandomFourierFeatures(resolution=8, frequencies=20000, bandwidths=(0.25,), seed=1)
    a, b = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    length_scale = 0.25 * math.sqrt(64)
    kernel = math.exp(-float((a - b).pow(2).sum()) / (2 * length_scale**2))

    approx = float(features(a[None]) @ features(b[None]).T)

    assert abs(approx - kernel) < 0.03


def test_site_and_server_build_the_same_features_from_the_config():
    config = config_from_dict({}, ["data.resolution=28", "mean_embedding.frequencies=16"])
    images = torch.rand(3, 1, 28, 28) * 2 - 1

    assert torch.equal(features_for(config)(images), features_for(config)(images))
    assert features_for(config).dim == 32


def test_several_bandwidths_approximate_the_average_of_their_kernels():
    features = RandomFourierFeatures(
        resolution=8, frequencies=20000, bandwidths=(0.5, 0.125), seed=3
    )
    a, b = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(4)) * 2 - 1
    distance2 = float((a - b).pow(2).sum())
    kernels = [math.exp(-distance2 / (2 * (bw * math.sqrt(64)) ** 2)) for bw in (0.5, 0.125)]

    approx = float(features(a[None]) @ features(b[None]).T)

    assert abs(approx - sum(kernels) / 2) < 0.03
    assert abs(approx - kernels[0]) > 0.1  # not the wide kernel alone


def test_one_bandwidth_in_a_list_gives_the_same_features_as_the_number():
    number = config_from_dict({}, ["mean_embedding.bandwidth=0.25"])
    listed = config_from_dict({}, ["mean_embedding.bandwidth=[0.25]"])
    images = torch.rand(3, 1, 32, 32) * 2 - 1

    assert torch.equal(features_for(number)(images), features_for(listed)(images))


def test_a_pooled_kernel_is_the_gaussian_kernel_of_the_pooled_images():
    features = RandomFourierFeatures(
        resolution=8, frequencies=20000, bandwidths=(0.5,), seed=5, poolings=(2,)
    )
    a, b = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(6)) * 2 - 1
    pooled = torch.nn.functional.avg_pool2d(torch.stack([a, b]), 2)
    length_scale = 0.5 * math.sqrt(16)
    kernel = math.exp(-float((pooled[0] - pooled[1]).pow(2).sum()) / (2 * length_scale**2))

    approx = float(features(a[None]) @ features(b[None]).T)

    assert abs(approx - kernel) < 0.03


def test_a_pooled_kernel_ignores_detail_within_a_pooling_square():
    features = RandomFourierFeatures(
        resolution=8, frequencies=100, bandwidths=(0.25, 0.25), seed=7, poolings=(1, 4)
    )
    image = torch.zeros(1, 1, 8, 8)
    # Same 4x4 block averages (all zero), different pixels.
    checkerboard = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2 - 1.0

    plain, textured = features(image), features(checkerboard[None, None] * 0.5)

    coarse = slice(50, 100)  # the cosines of the pooled block
    assert torch.allclose(plain[:, coarse], textured[:, coarse], atol=1e-6)
    assert not torch.allclose(plain[:, :50], textured[:, :50], atol=1e-3)


def test_a_detail_kernel_is_the_gaussian_kernel_of_the_images_minus_their_pooled_copies():
    features = RandomFourierFeatures(
        resolution=8, frequencies=20000, bandwidths=(0.5,), seed=5, details=(2,)
    )
    a, b = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(6)) * 2 - 1

    def detail(image: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.avg_pool2d(image[None], 2)
        return image - torch.nn.functional.interpolate(pooled, scale_factor=2)[0]

    length_scale = 0.5 * math.sqrt(64)
    kernel = math.exp(-float((detail(a) - detail(b)).pow(2).sum()) / (2 * length_scale**2))

    approx = float(features(a[None]) @ features(b[None]).T)

    assert abs(approx - kernel) < 0.03


def test_a_detail_kernel_ignores_the_layout():
    features = RandomFourierFeatures(
        resolution=8, frequencies=100, bandwidths=(0.25, 0.25), seed=7, details=(0, 2)
    )
    image = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(8)) - 0.5
    # Constant over each 2x2 square: changes the layout, not the detail.
    layout = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(9)) - 0.5
    brighter = image + layout.repeat_interleave(2, 2).repeat_interleave(2, 3)

    plain, shifted = features(image), features(brighter)

    fine = slice(50, 100)  # the cosines of the detail block
    assert torch.allclose(plain[:, fine], shifted[:, fine], atol=1e-5)
    assert not torch.allclose(plain[:, :50], shifted[:, :50], atol=1e-3)


def _differences(image: torch.Tensor) -> torch.Tensor:
    return torch.cat(
        [
            (image[..., :, 1:] - image[..., :, :-1]).flatten(),
            (image[..., 1:, :] - image[..., :-1, :]).flatten(),
        ]
    )


def test_a_gradient_kernel_is_the_gaussian_kernel_of_the_neighbour_differences():
    features = RandomFourierFeatures(
        resolution=8, frequencies=20000, bandwidths=(0.5,), seed=5, gradients=(1,)
    )
    a, b = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(6)) * 2 - 1
    length_scale = 0.5 * 8
    distance = float((_differences(a) - _differences(b)).pow(2).sum())
    kernel = math.exp(-distance / (2 * length_scale**2))

    approx = float(features(a[None]) @ features(b[None]).T)

    assert abs(approx - kernel) < 0.03


def test_a_gradient_kernel_ignores_brightness_and_sees_edges():
    features = RandomFourierFeatures(
        resolution=8, frequencies=100, bandwidths=(0.25, 0.25), seed=7, gradients=(0, 1)
    )
    image = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(8)) - 0.5
    edge = image.clone()
    edge[..., 4:] += 0.5

    plain, brighter, edged = features(image), features(image + 0.3), features(edge)

    texture = slice(50, 100)  # the cosines of the gradient block
    assert torch.allclose(plain[:, texture], brighter[:, texture], atol=1e-5)
    assert not torch.allclose(plain[:, :50], brighter[:, :50], atol=1e-3)
    assert not torch.allclose(plain[:, texture], edged[:, texture], atol=1e-3)


def test_a_gradient_kernel_leaves_the_other_kernels_frequencies_unchanged():
    overrides = ["mean_embedding.bandwidth=[0.25, 0.125]", "mean_embedding.frequencies=40"]
    without = features_for(config_from_dict({}, overrides)).weights
    with_gradient = features_for(
        config_from_dict({}, [*overrides, "mean_embedding.gradient=[0, 1]"])
    ).weights

    assert torch.equal(without[:, :20], with_gradient[:, :20])
    assert not torch.allclose(without[:, 20:], with_gradient[:, 20:])


@pytest.mark.parametrize(
    "neutral",
    [
        "mean_embedding.pooling=[1, 1]",
        "mean_embedding.detail=[0, 0]",
        "mean_embedding.gradient=[0, 0]",
    ],
)
def test_a_neutral_setting_gives_the_default_features(neutral):
    default = config_from_dict({}, ["mean_embedding.bandwidth=[0.25, 0.125]"])
    explicit = config_from_dict({}, ["mean_embedding.bandwidth=[0.25, 0.125]", neutral])

    assert torch.equal(features_for(default).weights, features_for(explicit).weights)


def test_the_config_s_pooling_reaches_the_features():
    config = config_from_dict({}, ["mean_embedding.frequencies=8", "mean_embedding.pooling=2"])

    weights = features_for(config).weights.view(16, 2, 16, 2, 8)

    # Every frequency is constant over each 2x2 square of the 32 px image.
    assert torch.equal(weights, weights[:, :1, :, :1].expand_as(weights))


def test_the_config_s_detail_reaches_the_features():
    config = config_from_dict({}, ["mean_embedding.frequencies=8", "mean_embedding.detail=2"])

    weights = features_for(config).weights.view(16, 2, 16, 2, 8)

    # Every frequency sums to zero over each 2x2 square: it cannot see the square's mean.
    assert weights.sum(dim=(1, 3)).abs().max() < 1e-6
