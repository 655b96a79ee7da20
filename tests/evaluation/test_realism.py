"""Realism detector (classifier two-sample test) on phantom chest X-rays with known answers:
degraded copies must be detected, a second real set must not be."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from common.conditions import NO_FINDING, condition_rows
from common.data.phantom import PhantomOptions, generate_phantom
from evaluation.realism import detect, real_vs_real
from evaluation.realism_figure import realism_examples

RESOLUTION = 28
PER_SIDE = 1000  # images a side: 500 to train on, 500 to score


@pytest.fixture(scope="module")
def films():
    """Two disjoint sets of phantom films (one image per patient, so no patient is in both or
    in both halves of one detector's split), multi-label over the phantom's four findings."""
    data = generate_phantom(
        PhantomOptions(num_patients=2 * PER_SIDE + 400, images_per_patient=1, seed=3), RESOLUTION
    )
    a = np.arange(0, len(data), 2)
    b = np.arange(1, len(data), 2)
    return data, a, b


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    blurred = gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma))
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def _noise(images: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    noisy = images + np.random.default_rng(seed).normal(0.0, fraction * 255, images.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _detect(data, real_rows, synthetic_images, synthetic_rows, seed=0):
    return detect(
        real=data.images[real_rows],
        synthetic=synthetic_images,
        real_labels=data.labels[real_rows],
        synthetic_labels=data.labels[synthetic_rows],
        class_names=data.class_names,
        multi_label=data.multi_label,
        seed=seed,
        max_per_side=PER_SIDE,
    )


@pytest.fixture(scope="module")
def blurred(films):
    data, a, b = films
    return _detect(data, a, _blur(data.images[b], 1.0), b)


def test_a_one_pixel_gaussian_blur_is_detected(blurred):
    assert blurred.auc >= 0.95
    low, high = blurred.auc_interval
    assert low <= blurred.auc <= high
    assert blurred.counts["test_per_side"] >= 400


def test_five_percent_noise_is_detected(films):
    data, a, b = films

    result = _detect(data, a, _noise(data.images[b], 0.05, seed=1), b)

    assert result.auc >= 0.95


def _real_vs_real(data, a, b):
    return real_vs_real(
        real_a=data.images[a],
        real_b=data.images[b],
        labels_a=data.labels[a],
        labels_b=data.labels[b],
        class_names=data.class_names,
        multi_label=data.multi_label,
        seed=0,
        max_per_side=PER_SIDE,
    )


def test_two_disjoint_real_sets_are_indistinguishable(films):
    data, a, b = films

    result = _real_vs_real(data, a, b)

    assert abs(result.auc - 0.5) <= 0.05
    assert 450 <= result.counts["test_per_side"] <= 0.55 * PER_SIDE


def test_with_separate_real_training_images_blur_is_detected_and_real_is_not(films):
    data, a, b = films
    # Set a: 400 real images scored, the rest for the detector to train on (as the generator's
    # training images are in evaluate); set b: the "synthetic" images, blurred or real.
    scored, training = a[:400], a[400:]

    def run(synthetic_images):
        return detect(
            real=data.images[scored],
            synthetic=synthetic_images,
            real_labels=data.labels[scored],
            synthetic_labels=data.labels[b],
            class_names=data.class_names,
            multi_label=data.multi_label,
            seed=0,
            max_per_side=PER_SIDE,
            training_real=data.images[training],
            training_real_labels=data.labels[training],
        )

    blurred, real = run(_blur(data.images[b], 1.0)), run(data.images[b])

    assert blurred.auc >= 0.95
    assert abs(real.auc - 0.5) <= 0.05
    assert blurred.settings["trained_on_separate_real_images"]
    held = np.flatnonzero(np.isfinite(blurred.scores))
    assert blurred.counts["test_per_side"] == len(held) >= 350


def test_class_proportions_alone_do_not_give_real_images_away(films):
    data, a, b = films
    # Keep a third of set b's images with no finding other than cardiomegaly, so b holds far
    # fewer healthy films than a. Unmatched, the detector separates the two sets by that alone
    # (AUC about 0.56-0.59 over seeds 0-2); matched per label row it must not.
    plain = (data.labels[b][:, [0, 2, 3]] == 0).all(axis=1)
    keep = b[~plain | (np.arange(len(b)) % 3 == 0)]

    result = _real_vs_real(data, a, keep)

    assert abs(result.auc - 0.5) <= 0.05
    assert result.counts["test_per_side"] >= 400
    for real_count, other_count in result.per_class_counts.values():
        assert real_count == other_count


def test_per_class_aucs_and_most_and_least_real_indices_are_valid(films, blurred):
    data, a, b = films
    names = [name for name, _ in condition_rows(data.class_names, multi_label=True)]
    assert set(names) == {NO_FINDING, *data.class_names}
    assert list(blurred.per_class) == names
    assert list(blurred.per_class_counts) == names
    for name in names:
        real_count, synthetic_count = blurred.per_class_counts[name]
        value = blurred.per_class[name]
        if real_count and synthetic_count:
            low, high = blurred.per_class_interval[name]
            assert 0.0 <= low <= value <= high <= 1.0
        else:
            assert value is None and blurred.per_class_interval[name] is None
    assert blurred.per_class[NO_FINDING] >= 0.9
    assert 0 < len(blurred.most_real) == len(blurred.least_real) <= 8
    scores = blurred.scores
    assert scores.shape == (len(b),)
    held = np.flatnonzero(np.isfinite(scores))
    assert len(held) == blurred.counts["test_per_side"]
    assert set(blurred.most_real) <= set(held) and set(blurred.least_real) <= set(held)
    assert scores[blurred.most_real[0]] == scores[held].max()
    assert scores[blurred.least_real[0]] == scores[held].min()
    assert np.all(np.diff(scores[blurred.most_real]) <= 0)
    assert np.all(np.diff(scores[blurred.least_real]) >= 0)
    summary = blurred.to_dict()
    assert summary["auc"] == blurred.auc and len(summary["auc_ci95"]) == 2


def test_same_seed_same_result_and_inputs_are_checked(films):
    data, a, b = films
    small_a, small_b = a[:200], b[:200]
    synthetic = _blur(data.images[small_b], 1.0)
    kwargs = dict(
        real=data.images[small_a],
        synthetic=synthetic,
        real_labels=data.labels[small_a],
        synthetic_labels=data.labels[small_b],
        class_names=data.class_names,
        multi_label=True,
        seed=5,
        epochs=3,
    )

    first, second = detect(**kwargs), detect(**kwargs)

    assert first.auc == second.auc
    np.testing.assert_array_equal(first.scores, second.scores)
    with pytest.raises(ValueError, match="uint8"):
        detect(**{**kwargs, "synthetic": synthetic.astype(np.float32)})


def test_the_figure_is_written(films, blurred, tmp_path):
    data, a, b = films
    path = tmp_path / "figures" / "realism.png"

    realism_examples(
        path,
        synthetic=_blur(data.images[b], 1.0),
        most_real=blurred.most_real,
        least_real=blurred.least_real,
        real=data.images[a],
        seed=0,
        auc=blurred.auc,
    )

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_auc_interval_is_delongs():
    from evaluation.realism import _delong_interval

    rng = np.random.default_rng(0)
    pos, neg = np.round(rng.normal(0.5, 1, 300), 1), np.round(rng.normal(0, 1, 400), 1)
    # DeLong from all pairs, ties counted half.
    pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    auc, v10, v01 = pairs.mean(), pairs.mean(axis=1), pairs.mean(axis=0)
    se = np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))

    low, high = _delong_interval(pos, neg)

    assert low == pytest.approx(auc - 1.959964 * se)
    assert high == pytest.approx(auc + 1.959964 * se)
