"""A site's one-shot release: bounded contributions, and noise of the calibrated scale."""

import numpy as np
import pytest
import torch

from client.mean_embedding import noisy_class_sums, unit_contributions
from common.data import ImageSet
from common.device import resolve_device
from common.mean_embedding import RandomFourierFeatures, release_weights

FEATURES = RandomFourierFeatures(resolution=8, frequencies=200, bandwidths=(0.5,), seed=0)


def image_set(n: int, seed: int = 0, patient_ids=None) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 8, 8), dtype=np.uint8)
    labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)]
    return ImageSet(images, labels, ("a", "b"), False, patient_ids=patient_ids)


def test_each_image_contributes_exactly_norm_one():
    data = image_set(20)

    norms = unit_contributions(data, np.arange(20).astype(str), FEATURES).norm(dim=1)

    assert torch.allclose(norms, torch.ones(20), atol=1e-5)


def test_a_patient_with_many_images_contributes_at_most_norm_one():
    data = image_set(12, patient_ids=np.array(["p0"] * 10 + ["p1", "p2"]))

    contributions = unit_contributions(data, data.patient_ids, FEATURES)

    assert contributions.shape[0] == 3
    assert (contributions.norm(dim=1) <= 1 + 1e-5).all()


@pytest.mark.parametrize("count_share", [None, 0.5, 0.9])
def test_removing_one_unit_moves_the_noiseless_sums_by_at_most_one(count_share):
    data = image_set(30)
    keys = np.arange(30).astype(str)
    rest = np.arange(1, 30)

    full = noisy_class_sums(data, keys, FEATURES, noise_multiplier=0.0, count_share=count_share)
    without = noisy_class_sums(
        data.subset(rest), keys[rest], FEATURES, noise_multiplier=0.0, count_share=count_share
    )

    # The mechanism's input is the weighted sums; the release divides the weights out again.
    feature_weight, count_weight = release_weights(FEATURES.dim, count_share)
    moved = torch.cat(
        [
            feature_weight * (full["feature_sums"] - without["feature_sums"]).flatten(),
            count_weight * (full["counts"] - without["counts"]),
        ]
    )
    assert float(moved.norm()) <= 1 + 1e-5


@pytest.mark.parametrize("count_share", [None, 0.5])
def test_a_noiseless_release_holds_the_exact_sums_and_counts(count_share):
    data = image_set(30)

    release = noisy_class_sums(
        data, np.arange(30).astype(str), FEATURES, noise_multiplier=0.0, count_share=count_share
    )

    images = torch.from_numpy(data.images).float() / 127.5 - 1.0
    phi = FEATURES(images)
    labels = torch.from_numpy(data.labels)
    assert torch.allclose(release["feature_sums"], labels.T @ phi, atol=1e-4)
    assert torch.allclose(release["counts"], labels.sum(dim=0), atol=1e-4)


def test_a_release_told_to_use_the_cpu_is_the_default_release_and_comes_back_on_the_cpu():
    data = image_set(30)
    keys = np.arange(30).astype(str)

    default = noisy_class_sums(data, keys, FEATURES, noise_multiplier=0.0)
    on_cpu = noisy_class_sums(
        data, keys, FEATURES, noise_multiplier=0.0, device=resolve_device("cpu")
    )

    for name in ("feature_sums", "counts"):
        assert torch.equal(on_cpu[name], default[name])
        assert on_cpu[name].device == torch.device("cpu")


def test_the_noise_has_the_calibrated_scale_and_is_fresh_each_release():
    data = image_set(30)
    keys = np.arange(30).astype(str)
    clean = noisy_class_sums(data, keys, FEATURES, noise_multiplier=0.0)

    first = noisy_class_sums(data, keys, FEATURES, noise_multiplier=2.0)
    second = noisy_class_sums(data, keys, FEATURES, noise_multiplier=2.0)

    noise = (first["feature_sums"] - clean["feature_sums"]).flatten()
    # sigma / a on the feature sums: 2 / sqrt(20 / 21) = 2.049. The noise is fresh from the OS,
    # so the bounds are 5 standard errors of the sample's std and mean (800 coordinates).
    assert abs(float(noise.std()) - 2.049) < 5 * 2.049 / np.sqrt(2 * noise.numel())
    assert abs(float(noise.mean())) < 5 * 2.049 / np.sqrt(noise.numel())
    assert not torch.equal(first["feature_sums"], second["feature_sums"])


def test_the_weights_split_the_sensitivity_to_minimise_the_mean_embeddings_error():
    feature_weight, count_weight = release_weights(400)

    assert feature_weight**2 + count_weight**2 == pytest.approx(1.0)
    assert count_weight**2 == pytest.approx(1 / 21)
    # Error of a mean of norm 1 per (sigma / n)^2: dim / a^2 + 1 / b^2, against 2 (dim + 1)
    # for DP-MERF's equal weights.
    assert 400 / feature_weight**2 + 1 / count_weight**2 == pytest.approx(441.0)


def test_a_count_share_of_one_half_gives_dp_merf_equal_weights():
    assert release_weights(400, 0.5) == pytest.approx((2**-0.5, 2**-0.5))


def test_multi_label_images_without_findings_fill_their_own_group():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 8, 8), dtype=np.uint8)
    labels = np.array([[1, 1], [0, 1], [0, 0], [0, 0]], dtype=np.float32)
    data = ImageSet(images, labels, ("a", "b"), True)

    release = noisy_class_sums(data, np.arange(4).astype(str), FEATURES, noise_multiplier=0.0)

    assert release["feature_sums"].shape == (3, FEATURES.dim)
    # Clipped to norm 1: the image with 2 findings (norm sqrt(2)) counts 1/sqrt(2) in each,
    # the others (norm 1) 1 in their one group.
    both = 2**-0.5
    expected = torch.tensor([both, both + 1, 2.0])
    assert torch.allclose(release["counts"], expected, atol=1e-5)
