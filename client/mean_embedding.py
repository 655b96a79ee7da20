"""A site's one-shot DP release for the mean_embedding method: noised per-group sums of the
random-feature embedding, plus noised per-group counts. No Flower here.

Each privacy unit (an image, or all of a patient's images) contributes the vector
[a phi(x) (x) g, b g] summed over its images and scaled to norm <= 1, so adding or removing a
unit moves the noised sums by at most 1 in L2: the Gaussian mechanism with noise multiplier
sigma adds N(0, sigma^2) to every coordinate. g is the image's groups: its one-hot class, or
for multi-label data its findings plus a last "no finding" group, so that images without
findings shape the release too. a and b (common.mean_embedding.release_weights,
`mean_embedding.count_share`) split the sensitivity between the feature sums and the counts.
"""

import secrets

import numpy as np
import torch

from client.training import to_tensors
from common.conditions import group_membership
from common.data import ImageSet
from common.device import CPU, tensors_to
from common.mean_embedding import RandomFourierFeatures, release_weights

BATCH = 1024


def unit_contributions(
    data: ImageSet,
    unit_keys: np.ndarray,
    features: RandomFourierFeatures,
    count_share: float | None = None,
    *,
    device: torch.device = CPU,
) -> torch.Tensor:
    """(units, G * dim + G) on `device`: each unit's [a phi (x) g, b g] summed over its
    images, norm <= 1."""
    feature_weight, count_weight = release_weights(features.dim, count_share)
    features = tensors_to(features, device)
    images, labels = to_tensors(data, device)
    groups = data.num_classes + int(data.multi_label)
    rows = [images.new_zeros(0, groups * (features.dim + 1))]  # an empty site sums to zero
    with torch.no_grad():
        for start in range(0, len(data), BATCH):
            phi = features(images[start : start + BATCH])
            g = group_membership(labels[start : start + BATCH], data.multi_label)
            weighted = feature_weight * (g[:, :, None] * phi[:, None, :]).flatten(1)
            rows.append(torch.cat([weighted, count_weight * g], dim=1))
    per_image = torch.cat(rows)
    units, unit_of_image = np.unique(unit_keys, return_inverse=True)
    per_unit = per_image.new_zeros(len(units), per_image.shape[1])
    per_unit.index_add_(0, torch.from_numpy(unit_of_image).to(device), per_image)
    return clip_rows(per_unit)


def clip_rows(rows: torch.Tensor) -> torch.Tensor:
    """Each row scaled to L2 norm at most 1; a row that is not finite becomes zero. So every
    row is finite with norm <= 1 whatever the features or settings were, and each depends on
    its own unit alone: the sum's sensitivity is 1."""
    finite = torch.isfinite(rows).all(dim=1, keepdim=True)
    rows = torch.where(finite, rows, torch.zeros_like(rows))
    # In double, where the norm of a finite float32 row cannot overflow (in float32 it can).
    norms = torch.linalg.vector_norm(rows.double(), dim=1, keepdim=True)
    return rows * (1.0 / norms.clamp(min=1.0)).to(rows.dtype)


def noisy_class_sums(
    data: ImageSet,
    unit_keys: np.ndarray,
    features: RandomFourierFeatures,
    *,
    noise_multiplier: float,
    count_share: float | None = None,
    device: torch.device = CPU,
) -> dict[str, torch.Tensor]:
    """{"feature_sums": (G, dim), "counts": (G,)} on the CPU, both noised, unweighted again (a
    single image counts 1); the only thing released. `device` computes the embedding sums."""
    contributions = unit_contributions(data, unit_keys, features, count_share, device=device)
    # The noise is drawn and added on the CPU, the same whichever device summed.
    total = contributions.sum(dim=0).cpu()
    return release_of_sum(
        total, dim=features.dim, noise_multiplier=noise_multiplier, count_share=count_share
    )


def release_of_sum(
    total: torch.Tensor,
    *,
    dim: int,
    noise_multiplier: float,
    count_share: float | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """noisy_class_sums' release of a precomputed sum of unit contributions (the release audit
    reruns it); `generator` None draws the noise from the OS, as a site must."""
    total = add_release_noise(total, noise_multiplier=noise_multiplier, generator=generator)
    k = total.numel() // (dim + 1)
    feature_weight, count_weight = release_weights(dim, count_share)
    return {
        "feature_sums": total[: k * dim].view(k, dim) / feature_weight,
        "counts": total[-k:] / count_weight,
    }


def add_release_noise(
    total: torch.Tensor, *, noise_multiplier: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`total` plus independent N(0, noise_multiplier^2) noise on every coordinate."""
    if generator is None:
        # Seeded from the OS: noise the server could regenerate from a config seed would be none.
        generator = torch.Generator().manual_seed(secrets.randbits(63))
    noise = torch.randn(total.shape, generator=generator, dtype=total.dtype)
    return total + noise_multiplier * noise
