"""Embedding networks trained by the project (nothing downloaded), cached per dataset.

One small CNN encoder and one contrastive objective (NT-Xent, SimCLR) serve two purposes:
- self-supervised: the two views are augmentations of one image (`train_self_supervised`);
  the embedding for copy detection, DOMIAS and authenticity;
- patient linkage: the two views are two images of one patient (`attacks.linkage`), which makes
  it a siamese verification network.
Encoders are cached as state dicts under a key hashed from everything that shapes them.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from common import atomic
from common.data import ImageSet
from common.device import CPU, module_device

TEMPERATURE = 0.2
FEATURES = 128


class Encoder(nn.Module):
    """Grayscale image in [-1, 1] -> FEATURES-d vector, any resolution (global pooling)."""

    def __init__(self) -> None:
        super().__init__()
        widths = [1, 32, 64, FEATURES]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)]
            layers += [nn.GroupNorm(8, c_out), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, R, R) -> float (N, 1, R, R) in [-1, 1], the generator's range."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).unsqueeze(1)


def augment(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Shift, exposure and noise changes: what differs between acquisitions of one image.

    No flips: left and right are anatomy in a chest X-ray. `rng` is a CPU generator: the
    draws are made on the CPU and moved to the images' device, so a seed augments alike on
    any device.
    """
    n, device = len(images), images.device
    # Shifts of up to 1/8 of the image, as affine grids in [-1, 1] coordinates.
    shift = (torch.rand(n, 2, generator=rng) - 0.5) * 0.5
    theta = torch.eye(2, 3).repeat(n, 1, 1)
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(device), list(images.shape), align_corners=False)
    shifted = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
    contrast = 1 + 0.3 * (torch.rand(n, 1, 1, 1, generator=rng) - 0.5)
    brightness = 0.2 * (torch.rand(n, 1, 1, 1, generator=rng) - 0.5)
    noise = 0.05 * torch.randn(shifted.shape, generator=rng)
    exposed = shifted * contrast.to(device) + brightness.to(device) + noise.to(device)
    return exposed.clamp(-1, 1)


def nt_xent(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SimCLR loss: each row of `a` must pick its partner in `b` among all 2N - 1 others."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    similarity = z @ z.T / TEMPERATURE
    similarity.fill_diagonal_(float("-inf"))
    n = len(a)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(a.device)
    return F.cross_entropy(similarity, partner)


def train_contrastive(
    views: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    seed: int,
    description: str,
    *,
    device: torch.device = CPU,
) -> Encoder:
    """Train an encoder (with a projection head, dropped afterwards) on `device` on pairs
    from `views`, which returns them on `device`; the weights start from CPU draws."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    encoder = Encoder().to(device)
    head = nn.Sequential(nn.Linear(FEATURES, FEATURES), nn.ReLU(), nn.Linear(FEATURES, 64))
    head.to(device)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    for _ in tqdm(range(steps), desc=description, unit="step", leave=False):
        a, b = views(rng)
        loss = nt_xent(head(encoder(a)), head(encoder(b)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return encoder.eval()


def cached_encoder(
    cache_dir: Path, key: dict, train: Callable[[], Encoder], *, device: torch.device = CPU
) -> Encoder:
    """The encoder stored under `key` in cache_dir, trained (and stored) on first use; on
    `device` either way, so a cache filled on one device serves the other."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    path = Path(cache_dir) / f"encoder-{digest[:16]}.pt"
    encoder = Encoder()
    if path.exists():
        encoder.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return encoder.to(device).eval()
    encoder = train().to(device)
    atomic.torch_save(encoder.state_dict(), path)
    return encoder


def train_self_supervised(
    data: ImageSet, steps: int, batch_size: int, seed: int, *, device: torch.device = CPU
) -> Encoder:
    images = to_tensor(data.images).to(device)
    generator = np.random.default_rng(seed)

    def views(rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        batch = images[generator.choice(len(images), min(batch_size, len(images)), replace=False)]
        return augment(batch, rng), augment(batch, rng)

    return train_contrastive(views, steps, seed, "self-supervised embedding", device=device)


@torch.no_grad()
def embed(
    encoder: Encoder, images: np.ndarray, center: np.ndarray | None = None, batch: int = 512
) -> np.ndarray:
    """Unit-norm embeddings (N, FEATURES), float32, computed on the encoder's device; cosine
    similarity is a dot product.

    center: subtracted before normalising (e.g. the mean feature of a reference set). The
    features are mostly positive, so uncentred cosines all crowd near 1.
    """
    if len(images) == 0:
        return np.zeros((0, FEATURES), np.float32)
    features = _features(encoder, images, batch)
    if center is not None:
        features = features - torch.from_numpy(center)
    return F.normalize(features, dim=1).numpy()


@torch.no_grad()
def mean_feature(encoder: Encoder, images: np.ndarray, batch: int = 512) -> np.ndarray:
    return _features(encoder, images, batch).mean(dim=0).numpy()


def _features(encoder: Encoder, images: np.ndarray, batch: int) -> torch.Tensor:
    """The encoder's features of `images`, on the CPU."""
    device = module_device(encoder)
    return torch.cat(
        [
            encoder(to_tensor(images[i : i + batch]).to(device)).cpu()
            for i in range(0, len(images), batch)
        ]
    )
