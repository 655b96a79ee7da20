"""The real-data classifier is trained once per dataset and settings, then reused."""

import numpy as np
import torch

from common.data import ImageSet
from evaluation.real_classifier import real_classifier
from evaluation.training import TrainingSettings

SETTINGS = TrainingSettings(epochs=1, batch_size=16)


def _data(seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(32, 28, 28), dtype=np.uint8)
    return ImageSet(images, np.eye(2, dtype=np.float32)[np.arange(32) % 2], ("a", "b"), False)


def test_a_second_request_reuses_the_cached_weights(tmp_path):
    first, path, first_cached = real_classifier(_data(), SETTINGS, 1, tmp_path)

    second, same_path, second_cached = real_classifier(_data(), SETTINGS, 1, tmp_path)

    assert (first_cached, second_cached) == (False, True)
    assert same_path == path and path.parent == tmp_path
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_other_images_or_settings_get_their_own_entry(tmp_path):
    _, path, _ = real_classifier(_data(), SETTINGS, 1, tmp_path)

    _, other_data, cached_data = real_classifier(_data(seed=1), SETTINGS, 1, tmp_path)
    _, other_seed, cached_seed = real_classifier(
        _data(), TrainingSettings(epochs=1, batch_size=16, seed=1), 1, tmp_path
    )

    assert len({path, other_data, other_seed}) == 3
    assert not cached_data and not cached_seed
