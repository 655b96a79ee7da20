"""Classifier architectures: one-channel input at MedMNIST size, built without downloads."""

import pytest
import torch

from common.errors import UserError
from evaluation.classifiers import CLASSIFIERS, build_classifier


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "efficientnet_v2_s"])
def test_every_architecture_takes_one_channel_28px_images(name, no_downloads):
    model = build_classifier(name, num_outputs=3).eval()

    with torch.no_grad():
        images = torch.zeros(2, 1, 28, 28)
        logits, features = model(images), model.features(images)

    assert logits.shape == (2, 3)
    assert features.shape == (2, model.feature_dim)
    assert not no_downloads.exists()  # torch never created its download cache


def test_the_registry_lists_the_three_architectures():
    assert CLASSIFIERS.names() == ["densenet121", "efficientnet_v2_s", "resnet18"]


def test_an_unknown_architecture_lists_the_valid_choices():
    with pytest.raises(UserError, match="valid choices: densenet121, efficientnet_v2_s, resnet18"):
        build_classifier("vgg11", num_outputs=2)
