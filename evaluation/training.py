"""Train a classifier on a fixed schedule and read its scores and features back.

Every classifier in one evaluation (real, synthetic, real + synthetic) trains for the same
number of steps with the same settings, and the last step's weights are used: no early
stopping, so nothing is selected by looking at the held-out test images.
"""

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.device import CPU, module_device
from evaluation.classifiers import Classifier, build_classifier


@dataclass(frozen=True)
class TrainingSettings:
    classifier: str = "resnet18"
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float (N, 1, H, W) in [-1, 1], the generator's range."""
    return torch.from_numpy(images).float().div_(127.5).sub_(1.0).unsqueeze(1)


def _loss(multi_label: bool) -> nn.Module:
    return nn.BCEWithLogitsLoss() if multi_label else nn.CrossEntropyLoss()


def _targets(labels: np.ndarray, multi_label: bool) -> torch.Tensor:
    if multi_label:
        return torch.from_numpy(labels.astype(np.float32))
    return torch.from_numpy(labels.argmax(axis=1).astype(np.int64))


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    multi_label: bool,
    settings: TrainingSettings,
    steps_per_epoch: int,
    name: str,
    *,
    device: torch.device = CPU,
) -> Classifier:
    """Train `settings.classifier` from scratch for epochs x steps_per_epoch steps on `device`.

    steps_per_epoch is passed in rather than derived from len(images) so that classifiers
    trained on sets of different sizes get the same optimisation budget. The weights are
    initialised and the batches drawn on the CPU, so a seed starts the same on any device.
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = build_classifier(settings.classifier, labels.shape[1]).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    total = settings.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=total
    )
    loss_fn = _loss(multi_label)
    inputs, targets = to_tensor(images), _targets(labels, multi_label)
    order = np.zeros(0, dtype=np.int64)
    started = time.perf_counter()
    model.train()
    for epoch in range(settings.epochs):
        bar = tqdm(range(steps_per_epoch), desc=f"{name} epoch {epoch + 1}/{settings.epochs}")
        for _ in bar:
            # Walk through shuffled passes of the training set; a small set is cycled.
            while len(order) < settings.batch_size:
                order = np.concatenate([order, rng.permutation(len(images))])
            batch, order = order[: settings.batch_size], order[settings.batch_size :]
            loss = loss_fn(model(inputs[batch].to(device)), targets[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
    tqdm.write(
        f"{name}: {total} steps on {len(images)} images, {time.perf_counter() - started:.0f}s"
    )
    return model.eval()


@torch.no_grad()
def scores_and_features(
    model: Classifier, images: np.ndarray, multi_label: bool, batch: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """(class scores (N, K): softmax or per-finding sigmoid, penultimate features (N, D)),
    computed on the model's device."""
    model.eval()
    device = module_device(model)
    scores, features = [], []
    for start in range(0, len(images), batch):
        h = model.features(to_tensor(images[start : start + batch]).to(device))
        logits = model.head(h)
        probabilities = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=1)
        scores.append(probabilities.cpu())
        features.append(h.cpu())
    return torch.cat(scores).numpy(), torch.cat(features).numpy()


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    return max(1, math.ceil(train_size / batch_size))
