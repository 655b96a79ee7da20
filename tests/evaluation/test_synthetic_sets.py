"""Synthetic sets generated per class from a run's generator, and their nested subsets."""

import numpy as np

from common.conditions import condition_groups
from evaluation.synthetic import first_per_class, generate_per_class


def test_multi_label_runs_generate_every_finding_and_no_finding(phantom_run):
    synthetic = generate_per_class(phantom_run, count=3, seed=0)

    groups = dict(condition_groups(synthetic.labels, synthetic.class_names, synthetic.multi_label))
    assert len(synthetic) == 15
    assert {name: len(rows) for name, rows in groups.items()} == {
        "no finding": 3,
        "opacity": 3,
        "cardiomegaly": 3,
        "effusion": 3,
        "nodule": 3,
    }
    assert synthetic.images.shape[1:] == (32, 32)


def test_generation_is_deterministic_in_the_seed(phantom_run):
    first = generate_per_class(phantom_run, count=2, seed=0)

    assert np.array_equal(first.images, generate_per_class(phantom_run, count=2, seed=0).images)
    assert not np.array_equal(first.images, generate_per_class(phantom_run, 2, seed=1).images)


def test_first_per_class_keeps_the_first_images_of_each_class(bright_dark_run):
    synthetic = generate_per_class(bright_dark_run, count=5, seed=0)

    subset = first_per_class(synthetic, 2)

    assert subset.labels.argmax(axis=1).tolist() == [0, 0, 1, 1]
    assert np.array_equal(subset.images[:2], synthetic.images[:2])
    assert np.array_equal(subset.images[2:], synthetic.images[5:7])
