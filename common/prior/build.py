"""Building a public prior: the project's GAN training, without privacy (no clipping, no
noise), on public images only, every condition zero (public films carry no labels of the
sites' classes; common/prior/file.py says how a model starts from it)."""

import dataclasses
import hashlib
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import torch

from client.training import DPGANTrainer, DPSettings
from common.config import Config
from common.data import ImageSet
from common.data.images import to_resolution
from common.errors import UserError
from common.models.weight_average import WeightAverage
from common.prior.file import CHANNELS, FORMAT, MODEL_KEYS, write_prior

REPO = Path(__file__).resolve().parents[2]
# The keys a public .npz may hold its images under: a plain `images` array, or MedMNIST's.
IMAGE_KEYS = ("images", "train_images")


class UnconditionalTrainer(DPGANTrainer):
    """The GAN trainer with every condition zero: the weights that read the condition learn
    nothing, the rest is the prior."""

    def _fake_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.model_config.latent_dim, generator=self.torch_rng)
        return z.to(self.device), torch.zeros(n, self.num_classes, device=self.device)


def read_public_images(path: Path, resolution: int) -> np.ndarray:
    """uint8 (N, resolution, resolution) grayscale images from a public .npz."""
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
            images = npz[key]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UserError(f"cannot read {path} as a .npz file ({error})") from None
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise UserError(
            f"{path}: {key} is {images.dtype} {images.shape}; expected uint8 grayscale images "
            "(N, H, W), N >= 1"
        )
    return np.stack([to_resolution(image, resolution) for image in images])


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
) -> str:
    """Trains the config's generator and discriminator on `public` at data.resolution and
    writes the prior to `out`; returns its hash. With `generator_ema` > 0 the prior's
    generator is the exponential moving average of the generator's weights, updated after
    every discriminator step with that decay; 0 keeps the last weights."""
    if not licence.strip():
        raise UserError("--licence: give the public data's licence (e.g. 'CC BY-SA 4.0')")
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    if not 0.0 <= generator_ema < 1.0:
        raise UserError(f"--generator-ema must be in [0, 1), got {generator_ema}")
    resolution = config.data.resolution
    model = dataclasses.replace(config.model, generator_components=1, prior="")
    images = read_public_images(public, resolution)
    data = ImageSet(images, np.zeros((len(images), 1), np.float32), ("public",), multi_label=True)
    batch = config.training.batch_size
    torch.manual_seed(seed)
    trainer = UnconditionalTrainer(
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
    trainer.train(steps, on_step=average.update if average else None)
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
        "conditioning": "none: trained with every condition zero; the weights that read the "
        "condition are not stored and start at zero",
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
    return write_prior(out, generator, discriminator, provenance, resolution, model)
