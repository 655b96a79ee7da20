"""Tiny run folders written the way `privsynth run` leaves them, for evaluation tests."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from common.config import config_from_dict, config_to_yaml
from common.data.federation import plan_federation
from common.models import Generator
from server.outputs import class_conditions, generate


def write_run(run_dir: Path, overrides: list[str], synthetic_per_class: int = 8) -> Path:
    """A finished run: config, split, an untrained generator and its synthetic.npz."""
    config = config_from_dict({"name": "tiny"}, overrides)
    split = plan_federation(config)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config_to_yaml(config))
    (run_dir / "split.json").write_text(json.dumps(split.to_dict()))
    (run_dir / "summary.json").write_text(json.dumps({"epsilon_per_site": {"site-0": 10.0}}))
    data = split.data
    torch.manual_seed(0)
    model = config.model
    generator = Generator(
        data.num_classes, model.latent_dim, model.generator_width, config.data.resolution
    ).eval()
    torch.save(
        {
            "state_dict": generator.state_dict(),
            "class_names": list(data.class_names),
            "multi_label": data.multi_label,
            "resolution": config.data.resolution,
            "model": asdict(model),
        },
        run_dir / "generator.pt",
    )
    conditions = class_conditions(data.class_names, data.multi_label)
    images = [
        generate(generator, c, synthetic_per_class, seed=i) for i, (_, c) in enumerate(conditions)
    ]
    labels = np.repeat(np.stack([c for _, c in conditions]), synthetic_per_class, axis=0)
    if not data.multi_label:
        labels = labels.argmax(axis=1)[:, None]
    np.savez(
        run_dir / "synthetic.npz",
        train_images=np.concatenate(images),
        train_labels=labels.astype(np.uint8),
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
