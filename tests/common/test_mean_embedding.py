"""The random Fourier features both sides build from the config."""

import math

import torch

from common.config import config_from_dict
from common.mean_embedding import RandomFourierFeatures, features_for


def test_every_embedding_has_norm_one():
    features = RandomFourierFeatures(pixels=64, frequencies=50, bandwidths=(0.5,), seed=0)
    images = torch.rand(7, 1, 8, 8) * 2 - 1

    norms = features(images).norm(dim=1)

    assert torch.allclose(norms, torch.ones(7), atol=1e-5)


def test_inner_products_approximate_the_gaussian_kernel():
    features = RandomFourierFeatures(pixels=64, frequencies=20000, bandwidths=(0.25,), seed=1)
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
    features = RandomFourierFeatures(pixels=64, frequencies=20000, bandwidths=(0.5, 0.125), seed=3)
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
