"""The mean embedding in a public prior's feature space (mean_embedding.prior_features)."""

import math

import pytest
import torch

from common.config import config_from_dict
from common.errors import UserError
from common.mean_embedding import PriorFeatures, RandomFourierFeatures, features_for
from common.models import build_discriminator
from common.prior.file import load_prior, start_from_discriminator
from tests.helpers.configs import TINY
from tests.helpers.priors import build_prior

RANDOM = ["mean_embedding.frequencies=16"]


@pytest.fixture
def prior(tmp_path):
    _, out = build_prior(tmp_path)
    return out


def embedding_config(prior, share: float):
    return config_from_dict(
        {}, [*TINY, *RANDOM, f"model.prior={prior}", f"mean_embedding.prior_features={share}"]
    )


def test_every_images_embedding_has_norm_one(prior):
    features = features_for(embedding_config(prior, 0.5))
    images = torch.rand(6, 1, 28, 28) * 2 - 1

    norms = features(images).norm(dim=1)

    assert isinstance(features, PriorFeatures)
    assert torch.allclose(norms, torch.ones(6), atol=1e-5)


def test_the_two_parts_are_the_random_features_and_the_priors_normalised_encoding(prior):
    config = embedding_config(prior, 0.36)
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    random_only = features_for(config_from_dict({}, [*TINY, *RANDOM]))
    discriminator = build_discriminator(1, 28, config.model)
    start_from_discriminator(load_prior(str(prior), config), discriminator)
    encoded = discriminator.encoder()(images)

    embedding = features_for(config)(images)

    assert embedding.shape[1] == random_only.dim + encoded.shape[1] == features_for(config).dim
    assert torch.allclose(embedding[:, : random_only.dim], 0.8 * random_only(images), atol=1e-6)
    expected = 0.6 * encoded / encoded.norm(dim=1, keepdim=True)
    assert torch.allclose(embedding[:, random_only.dim :], expected, atol=1e-6)


def test_a_zero_share_is_the_random_features_alone(prior):
    features = features_for(embedding_config(prior, 0))

    assert isinstance(features, RandomFourierFeatures)


def test_the_encoder_is_fixed_and_passes_gradients_to_the_images(prior):
    features = features_for(embedding_config(prior, 1.0))
    images = (torch.rand(2, 1, 28, 28) * 2 - 1).requires_grad_(True)

    features(images).sum().backward()

    assert images.grad is not None and images.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in features.encoder.parameters())


def test_an_image_whose_encoding_is_zero_embeds_with_norm_at_most_one(prior):
    features = features_for(embedding_config(prior, 1.0))
    for parameter in features.encoder.parameters():
        parameter.data.zero_()

    embedding = features(torch.rand(2, 1, 28, 28))

    assert torch.isfinite(embedding).all()
    assert (embedding.norm(dim=1) <= 1 + 1e-6).all()


def test_prior_features_without_a_prior_is_one_error_naming_both_keys():
    with pytest.raises(UserError, match=r"mean_embedding.prior_features.*model.prior"):
        config_from_dict({}, [*TINY, "mean_embedding.prior_features=0.5"])


def test_a_prior_for_another_resolution_is_one_error(prior):
    config = config_from_dict(
        {},
        [*TINY, "data.resolution=32", f"model.prior={prior}", "mean_embedding.prior_features=1"],
    )

    with pytest.raises(UserError, match="data.resolution"):
        features_for(config)


@pytest.mark.parametrize("share", [-0.1, 1.5, math.nan])
def test_the_share_is_a_fraction(share):
    with pytest.raises(UserError, match="mean_embedding.prior_features"):
        config_from_dict({}, [*TINY, "model.prior=x", f"mean_embedding.prior_features={share}"])
