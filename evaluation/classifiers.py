"""Classifier architectures for utility evaluation, trained from scratch on one-channel images.

Every builder returns a `Classifier`: a backbone that maps images to a feature vector (the
penultimate layer, also the feature space of the distribution metrics) and a linear head.
No pretrained weights: nothing may be downloaded at run time.
"""

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from common.registry import Registry


class Classifier(nn.Module):
    """images (N, 1, R, R) in [-1, 1] -> logits (N, num_outputs); `features` gives the backbone."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_outputs)
        self.feature_dim = feature_dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


CLASSIFIERS: Registry[Callable[[int], Classifier]] = Registry("classifier")


@CLASSIFIERS.register("resnet18")
def resnet18(num_outputs: int) -> Classifier:
    """ResNet-18 with a one-channel 3x3 stride-1 stem; the max-pool stays, so the residual
    blocks run at 14 px (28 px input), as cheap on a CPU as the ImageNet stem but without its
    7x7 stride-2 loss of detail."""
    model = torchvision.models.resnet18(weights=None)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    feature_dim = model.fc.in_features
    model.fc = nn.Identity()
    return Classifier(model, feature_dim, num_outputs)


@CLASSIFIERS.register("densenet121")
def densenet121(num_outputs: int) -> Classifier:
    """DenseNet-121 with a one-channel 3x3 stride-1 stem and no stem pooling: its three
    transitions already halve 28 px to 3 px."""
    model = torchvision.models.densenet121(weights=None)
    model.features.conv0 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.features.pool0 = nn.Identity()
    feature_dim = model.classifier.in_features
    model.classifier = nn.Identity()
    return Classifier(model, feature_dim, num_outputs)


@CLASSIFIERS.register("efficientnet_v2_s")
def efficientnet_v2_s(num_outputs: int) -> Classifier:
    """EfficientNet-V2-S with a one-channel 3x3 stride-1 stem (total stride 16, not 32)."""
    model = torchvision.models.efficientnet_v2_s(weights=None)
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(
        1, stem.out_channels, kernel_size=3, stride=1, padding=1, bias=False
    )
    feature_dim = model.classifier[-1].in_features
    model.classifier = nn.Identity()
    return Classifier(model, feature_dim, num_outputs)


def build_classifier(name: str, num_outputs: int) -> Classifier:
    return CLASSIFIERS.get(name)(num_outputs)
