"""A finished run's images, as the evaluation and the attack suite see them.

Members are the images the sites trained on, the holdout is the patient-disjoint real set the
generator never saw, the untrained images are the sites' own share of the training population
that no mechanism saw (data.untrained_fraction), and the synthetic set is what the run released
(RunFolder.read_synthetic).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.config import Config
from common.data import ImageSet
from common.data.federation import load_dataset
from common.errors import UserError
from common.models import AnyGenerator
from common.run_folder import RunFolder


@dataclass(frozen=True)
class RunData:
    run_dir: Path
    config: Config
    members: ImageSet
    holdout: ImageSet
    synthetic: ImageSet
    # None where the run kept no untrained share (one planned before it was kept, or with
    # data.untrained_fraction 0); then untrained_sites is empty.
    untrained: ImageSet | None = None
    untrained_sites: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def load_run_config(run_dir: Path) -> Config:
    return RunFolder(run_dir).read_config()


def read_synthetic(run_dir: Path, class_names: tuple[str, ...], multi_label: bool) -> ImageSet:
    """The run's synthetic dataset, labelled as one-hot rows or 0/1 findings."""
    images, labels = RunFolder(run_dir).read_synthetic()
    if not multi_label:
        labels = np.eye(len(class_names), dtype=np.float32)[labels.reshape(-1).astype(np.int64)]
    return ImageSet(images, labels.astype(np.float32), class_names, multi_label)


def load_run(run_dir: Path) -> RunData:
    """The run's members, holdout, untrained images and synthetic set (reads the data source
    its config names)."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    config = folder.read_config()
    split = folder.read_split()
    data = load_dataset(config)
    members = np.sort(np.concatenate([np.asarray(s, dtype=np.int64) for s in split["sites"]]))
    holdout = np.asarray(split["holdout"], dtype=np.int64)
    if len(holdout) == 0:
        raise UserError(
            f"{run_dir} has no holdout set (data.holdout_fraction was 0); evaluation and "
            "attacks need real images the generator never saw"
        )
    untrained = [np.asarray(s, dtype=np.int64) for s in split.get("untrained", [])]
    kept = np.concatenate([np.zeros(0, dtype=np.int64), *untrained])
    if max(members.max(initial=-1), holdout.max(initial=-1), kept.max(initial=-1)) >= len(data):
        raise UserError(
            f"{folder.split_file} does not match the data source: it indexes images the data "
            f"({len(data)} images) does not have. Was the data changed after the run?"
        )
    synthetic = read_synthetic(run_dir, data.class_names, data.multi_label)
    return RunData(
        run_dir,
        config,
        data.subset(members),
        data.subset(holdout),
        synthetic,
        untrained=data.subset(kept) if len(kept) else None,
        untrained_sites=np.repeat(np.arange(len(untrained)), [len(s) for s in untrained]),
    )


def load_run_generator(run_dir: Path) -> tuple[AnyGenerator, tuple[str, ...], bool]:
    """(generator in eval mode, class names, multi-label?) from the run's saved generator."""
    saved = RunFolder(run_dir).read_generator()
    return saved.build(), saved.class_names, saved.multi_label
