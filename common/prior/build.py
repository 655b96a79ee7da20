"""Building a public prior: the project's GAN training, without privacy (no clipping, no
noise), on public images only. Unlabelled public films train with every condition zero;
public films labelled with the sites' classes train the conditional models as a site would
(common/prior/file.py says how a model starts from either)."""

import dataclasses
import hashlib
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from client.training import DPGANTrainer, DPSettings
from common.config import Config
from common.data import ImageSet
from common.data.images import to_resolution
from common.errors import UserError
from common.models.weight_average import WeightAverage
from common.prior.file import CHANNELS, FORMAT, MODEL_KEYS, write_prior

REPO = Path(__file__).resolve().parents[2]
# The keys a public .npz may hold its images under: a plain `images` array, or MedMNIST's;
# its labels, if any, under the matching key.
IMAGE_KEYS = ("images", "train_images")
LABEL_KEYS = {"images": "labels", "train_images": "train_labels"}


class UnconditionalTrainer(DPGANTrainer):
    """The GAN trainer with every condition zero: the weights that read the condition learn
    nothing, the rest is the prior."""

    def _fake_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.model_config.latent_dim, generator=self.torch_rng)
        return z.to(self.device), torch.zeros(n, self.num_classes, device=self.device)


def _read_public(path: Path, *, labelled: bool) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(images, labels or None, the images' key) as stored in a public .npz."""
    if not path.is_file():
        raise UserError(f"public image file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            key = next((k for k in IMAGE_KEYS if k in npz.files), None)
            if key is None:
                raise UserError(
                    f"{path} holds none of the keys {', '.join(IMAGE_KEYS)}; give a .npz with "
                    "its grayscale images under `images`"
                )
            if labelled and LABEL_KEYS[key] not in npz.files:
                raise UserError(
                    f"{path} has no `{LABEL_KEYS[key]}` beside `{key}`; give the public "
                    "films' labels there, or build the prior without --classes"
                )
            images = npz[key]
            labels = npz[LABEL_KEYS[key]] if labelled else None
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UserError(f"cannot read {path} as a .npz file ({error})") from None
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise UserError(
            f"{path}: {key} is {images.dtype} {images.shape}; expected uint8 grayscale images "
            "(N, H, W), N >= 1"
        )
    return images, labels, key


def read_public_images(path: Path, resolution: int) -> np.ndarray:
    """uint8 (N, resolution, resolution) grayscale images from a public .npz."""
    images, _, _ = _read_public(path, labelled=False)
    return np.stack([to_resolution(image, resolution) for image in images])


def read_public_set(
    path: Path, resolution: int, *, classes: tuple[str, ...], multi_label: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, R, R), float32 labels (N, K) one-hot or multi-hot over `classes`)
    from a public .npz whose labels are class indices, or 0/1 columns when multi-label."""
    images, labels, key = _read_public(path, labelled=True)
    name, k = LABEL_KEYS[key], len(classes)
    if multi_label:
        if labels.shape != (len(images), k) or not np.isin(labels, (0, 1)).all():
            raise UserError(
                f"{path}: {name} is {labels.shape}; expected ({len(images)}, {k}) of 0 and 1, "
                f"one column per class in --classes ({', '.join(classes)})"
            )
        hot = labels.astype(np.float32)
    else:
        flat = labels.reshape(-1) if labels.size == len(images) else None
        if flat is None or not np.isin(flat, np.arange(k)).all():
            raise UserError(
                f"{path}: {name} is {labels.shape}; expected one class index in 0..{k - 1} "
                f"per image (--classes {', '.join(classes)}), or pass --multi-label"
            )
        hot = np.eye(k, dtype=np.float32)[flat.astype(np.int64)]
    return np.stack([to_resolution(image, resolution) for image in images]), hot


def git_commit() -> str:
    """The checkout's commit, marked `+changes` when tracked files differ from it."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return result.stdout.strip()

    head = git("rev-parse", "HEAD") or "unknown"
    return f"{head}+changes" if git("status", "--porcelain", "--untracked-files=no") else head


def build_prior(
    public: Path,
    out: Path,
    config: Config,
    *,
    licence: str,
    steps: int,
    seed: int,
    device: torch.device,
    command: str,
    generator_ema: float = 0.0,
    classes: tuple[str, ...] = (),
    multi_label: bool = False,
) -> str:
    """Trains the config's generator and discriminator on `public` at data.resolution and
    writes the prior to `out`; returns its hash. With `classes` the public file's labels
    (named by `classes`, in column order) condition the models; without, every condition is
    zero. With `generator_ema` > 0 the prior's generator is the exponential moving average of
    the generator's weights, updated after every discriminator step with that decay; 0 keeps
    the last weights."""
    if not licence.strip():
        raise UserError("--licence: give the public data's licence (e.g. 'CC BY-SA 4.0')")
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    if not 0.0 <= generator_ema < 1.0:
        raise UserError(f"--generator-ema must be in [0, 1), got {generator_ema}")
    resolution = config.data.resolution
    model = dataclasses.replace(config.model, generator_components=1, prior="")
    if len(set(classes)) != len(classes) or not all(name.strip() for name in classes):
        raise UserError(f"--classes: give distinct, non-empty class names, got {list(classes)}")
    if classes:
        images, labels = read_public_set(
            public, resolution, classes=classes, multi_label=multi_label
        )
        data = ImageSet(images, labels, classes, multi_label=multi_label)
    else:
        images = read_public_images(public, resolution)
        data = ImageSet(
            images, np.zeros((len(images), 1), np.float32), ("public",), multi_label=True
        )
    batch = config.training.batch_size
    torch.manual_seed(seed)
    trainer = (DPGANTrainer if classes else UnconditionalTrainer)(
        data,
        np.arange(len(images)),
        model,
        config.training,
        DPSettings(
            noise_multiplier=0.0, max_grad_norm=1.0, sample_rate=min(1.0, batch / len(images))
        ),
        device,
        secret_seed=seed,
    )
    commit = git_commit()  # the code that trains, before a later checkout can change it
    average = WeightAverage(trainer.generator, decay=generator_ema) if generator_ema else None
    bar = tqdm(total=steps, desc=f"building the prior on {public.name}", unit="D step")

    def on_step() -> None:
        if average:
            average.update()
        bar.update()

    trainer.train(steps, on_step=on_step)
    bar.close()
    provenance = {
        "format": FORMAT,
        "public_data": {
            "file": public.name,
            "sha256": hashlib.sha256(public.read_bytes()).hexdigest(),
            "licence": licence,
            "images": len(images),
        },
        "resolution": resolution,
        "channels": CHANNELS,
        "model": {key: getattr(model, key) for key in MODEL_KEYS},
        "conditioning": (
            {"classes": list(classes), "multi_label": multi_label}
            if classes
            else "none: trained with every condition zero; the weights that read the "
            "condition are not stored and start at zero"
        ),
        "privacy": "public data only, no site's data: costs no epsilon",
        "training": {
            "steps": steps,
            "seed": seed,
            "generator_ema": generator_ema,
            **dataclasses.asdict(config.training),
        },
        "command": command,
        "commit": commit,
    }
    generator = average.model if average else trainer.generator
    discriminator = trainer.discriminator
    return write_prior(
        out,
        generator,
        discriminator,
        provenance,
        resolution,
        model,
        classes=classes or None,
        multi_label=multi_label,
    )
