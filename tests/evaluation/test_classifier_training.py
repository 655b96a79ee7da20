"""Training on a fixed schedule: learns an easy task, deterministic in the seed."""

import numpy as np
import torch

from common.device import resolve_device
from evaluation.metrics.auc import per_class_auc
from evaluation.training import TrainingSettings, scores_and_features, train_classifier

SETTINGS = TrainingSettings(epochs=2, batch_size=16, learning_rate=3e-3)


def _bright_dark(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = np.arange(n) % 2
    images = np.clip(
        np.where(classes == 1, 170, 80)[:, None, None] + rng.normal(0, 20, (n, 28, 28)), 0, 255
    )
    return images.astype(np.uint8), np.eye(2, dtype=np.float32)[classes]


def test_a_classifier_separates_bright_from_dark_images_perfectly():
    train_images, train_labels = _bright_dark(64, seed=0)
    test_images, test_labels = _bright_dark(40, seed=1)

    model = train_classifier(train_images, train_labels, False, SETTINGS, 4, "test")
    scores, features = scores_and_features(model, test_images, multi_label=False)

    assert per_class_auc(test_labels, scores).tolist() == [1.0, 1.0]
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    assert features.shape == (40, 512)


def test_multi_label_scores_are_independent_per_finding():
    images, labels = _bright_dark(32, seed=0)
    findings = np.stack([labels[:, 1], np.zeros(32, np.float32)], axis=1)

    model = train_classifier(images, findings, True, SETTINGS, 2, "test")
    scores, _ = scores_and_features(model, images, multi_label=True)

    assert scores.shape == (32, 2)
    assert ((scores > 0) & (scores < 1)).all()
    assert not np.allclose(scores.sum(axis=1), 1.0)


def test_the_same_seed_trains_the_same_weights():
    images, labels = _bright_dark(32, seed=0)

    first = train_classifier(images, labels, False, SETTINGS, 2, "test")
    second = train_classifier(images, labels, False, SETTINGS, 2, "test")

    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_a_classifier_told_to_use_the_cpu_is_the_default_one():
    images, labels = _bright_dark(32, seed=0)

    default = train_classifier(images, labels, False, SETTINGS, 2, "test")
    on_cpu = train_classifier(
        images, labels, False, SETTINGS, 2, "test", device=resolve_device("cpu")
    )

    default_scores, default_features = scores_and_features(default, images, multi_label=False)
    cpu_scores, cpu_features = scores_and_features(on_cpu, images, multi_label=False)
    assert np.array_equal(cpu_scores, default_scores)
    assert np.array_equal(cpu_features, default_features)
