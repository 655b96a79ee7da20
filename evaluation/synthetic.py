"""The synthetic set under evaluation: the run's exported `synthetic.npz`, or N images per
class freshly generated from its `generator.pt`."""

from pathlib import Path

import numpy as np
import torch

from common.conditions import condition_groups, condition_rows
from common.data import ImageSet
from common.device import CPU
from common.run_data import load_run_generator
from server.outputs import generate


def generate_per_class(
    run_dir: Path, count: int, seed: int, *, device: torch.device = CPU
) -> ImageSet:
    """`count` images per class (and per "no finding" for multi-label data), deterministic,
    generated on `device`."""
    generator, class_names, multi_label = load_run_generator(run_dir)
    generator.to(device)
    images, labels = [], []
    for i, (_, condition) in enumerate(condition_rows(class_names, multi_label)):
        images.append(generate(generator, condition, count, seed=seed * 1000 + i))
        labels.append(np.repeat(condition[None], count, axis=0))
    return ImageSet(np.concatenate(images), np.concatenate(labels), class_names, multi_label)


def first_per_class(synthetic: ImageSet, count: int) -> ImageSet:
    """The first `count` images of every class: nested subsets for the samples-per-class curve."""
    groups = condition_groups(synthetic.labels, synthetic.class_names, synthetic.multi_label)
    return synthetic.subset(np.sort(np.concatenate([rows[:count] for _, rows in groups])))
