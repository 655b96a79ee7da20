"""A finished run's images, as the evaluation and the attack suite see them.

Members are the images the sites trained on, the holdout is the patient-disjoint real set the
generator never saw, and the synthetic set is what the run released (`synthetic.npz`).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.config import Config, ModelConfig, build_dataclass, load_config
from common.data import ImageSet
from common.data.federation import load_dataset
from common.errors import UserError
from common.models import AnyGenerator, build_generator


@dataclass(frozen=True)
class RunData:
    run_dir: Path
    config: Config
    members: ImageSet
    holdout: ImageSet
    synthetic: ImageSet


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise UserError(
            f"{path} is missing: {what}. Is {path.parent} a finished `privsynth run` folder?"
        )
    return path


def load_run_config(run_dir: Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist; pass a `privsynth run` folder")
    return load_config(str(_require(run_dir / "config.yaml", "the run's resolved config")))


def read_synthetic(path: Path, class_names: tuple[str, ...], multi_label: bool) -> ImageSet:
    """A synthetic dataset in the MedMNIST layout (`train_images`, `train_labels`)."""
    with np.load(path, allow_pickle=False) as arrays:
        images = arrays["train_images"]
        labels = arrays["train_labels"]
    if not multi_label:
        labels = np.eye(len(class_names), dtype=np.float32)[labels.reshape(-1).astype(np.int64)]
    return ImageSet(images, labels.astype(np.float32), class_names, multi_label)


def load_run(run_dir: Path) -> RunData:
    """The run's members, holdout and synthetic set (reads the data source its config names)."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    split = json.loads(_require(run_dir / "split.json", "the run's holdout/site split").read_text())
    data = load_dataset(config)
    members = np.sort(np.concatenate([np.asarray(s, dtype=np.int64) for s in split["sites"]]))
    holdout = np.asarray(split["holdout"], dtype=np.int64)
    if len(holdout) == 0:
        raise UserError(
            f"{run_dir} has no holdout set (data.holdout_fraction was 0); evaluation and "
            "attacks need real images the generator never saw"
        )
    if max(members.max(initial=-1), holdout.max(initial=-1)) >= len(data):
        raise UserError(
            f"{run_dir}/split.json does not match the data source: it indexes images the data "
            f"({len(data)} images) does not have. Was the data changed after the run?"
        )
    synthetic = read_synthetic(
        _require(run_dir / "synthetic.npz", "the run's synthetic dataset"),
        data.class_names,
        data.multi_label,
    )
    return RunData(run_dir, config, data.subset(members), data.subset(holdout), synthetic)


def load_run_generator(run_dir: Path) -> tuple[AnyGenerator, tuple[str, ...], bool]:
    """(generator in eval mode, class names, multi-label?) from the run's `generator.pt`."""
    saved = torch.load(
        _require(Path(run_dir) / "generator.pt", "the run's final generator"),
        map_location="cpu",
        weights_only=True,
    )
    class_names = tuple(saved["class_names"])
    # Parsed like a config section: keys added since the file was written take their defaults.
    model = build_dataclass(ModelConfig, saved["model"], "generator.pt model")
    generator = build_generator(len(class_names), saved["resolution"], model)
    generator.load_state_dict(saved["state_dict"])
    return generator.eval(), class_names, bool(saved["multi_label"])
