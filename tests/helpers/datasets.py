"""Small image data files in the MedMNIST .npz layout, for tests that need a data source."""

from pathlib import Path

import numpy as np

from common.data.medmnist import write_medmnist
from common.data.phantom import PhantomOptions, generate_phantom


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


def write_phantom_site(path: Path, seed: int, patients: int = 20) -> None:
    """A site's private data as a MedMNIST-layout .npz with patient IDs: phantom chest
    X-rays, 28 px, two images per patient."""
    options = PhantomOptions(num_patients=patients, images_per_patient=2, seed=seed)
    write_medmnist(generate_phantom(options, 28), path)


def write_site_npz(path: Path) -> Path:
    """Six black 28 px images of two classes, without patient IDs."""
    labels = np.array([[0], [1], [0], [1], [0], [1]])
    np.savez(path, train_images=np.zeros((6, 28, 28), np.uint8), train_labels=labels)
    return path


def write_shifted_holdout_npz(
    path: Path, brightness: int, train: int = 400, val: int = 240
) -> Path:
    """A MedMNIST-layout file, 28 px, one image per patient, classes "normal" and "finding":
    `train` phantom chest X-rays of one population, and as the `val` split `val` of other
    patients made `brightness` grey levels brighter, a holdout from another population (as
    films from another scanner or hospital)."""
    arrays = {}
    for split, count, seed, shift in (("train", train, 0, 0), ("val", val, 5, brightness)):
        options = PhantomOptions(num_patients=count, images_per_patient=1, seed=seed)
        films = generate_phantom(options, 28)
        arrays[f"{split}_images"] = np.clip(films.images.astype(np.int64) + shift, 0, 255).astype(
            np.uint8
        )
        arrays[f"{split}_labels"] = films.labels.any(axis=1)[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path
