"""Tiny run folders written the way `privsynth run` leaves them, for evaluation tests."""

from pathlib import Path

import numpy as np
import torch

from common.conditions import condition_rows
from common.config import config_from_dict
from common.data.federation import plan_federation
from common.models import Generator
from common.run_folder import RunFolder
from server.outputs import generate


def write_run(run_dir: Path, overrides: list[str], synthetic_per_class: int = 8) -> Path:
    """A finished run: config, split, summary, an untrained generator and its synthetic set."""
    config = config_from_dict({"name": "tiny"}, overrides)
    split = plan_federation(config)
    run_dir.mkdir(parents=True)
    run = RunFolder(run_dir)
    run.write_config(config)
    run.write_split(split.to_dict())
    run.write_summary({"epsilon_per_site": {"site-0": 10.0}})
    data = split.data
    torch.manual_seed(0)
    model = config.model
    generator = Generator(
        data.num_classes, model.latent_dim, model.generator_width, config.data.resolution
    ).eval()
    run.write_generator(
        state_dict=generator.state_dict(),
        class_names=data.class_names,
        multi_label=data.multi_label,
        resolution=config.data.resolution,
        model=model,
    )
    conditions = condition_rows(data.class_names, data.multi_label)
    images = [
        generate(generator, c, synthetic_per_class, seed=i) for i, (_, c) in enumerate(conditions)
    ]
    run.write_synthetic(
        images=np.concatenate(images),
        conditions=np.repeat(np.stack([c for _, c in conditions]), synthetic_per_class, axis=0),
        row_names=[name for name, _ in conditions for _ in range(synthetic_per_class)],
        class_names=data.class_names,
        multi_label=data.multi_label,
    )
    return run_dir


def write_bright_dark_npz(path: Path, per_split: int = 40) -> Path:
    """A MedMNIST-layout file, 28 px: class "bright" images are brighter than "dark" ones."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        labels = np.arange(per_split) % 2
        base = np.where(labels == 1, 170, 80)[:, None, None]
        noise = rng.normal(0, 20, size=(per_split, 28, 28))
        arrays[f"{split}_images"] = np.clip(base + noise, 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path
