"""Realism detector: a classifier two-sample test of synthetic against real images.

A small CNN is trained to tell real images from synthetic ones and scored on images it did not
train on. Its held-out ROC AUC (real = positive, score = how real the detector finds an image)
says how distinguishable the two sets are: 0.5 means the detector finds nothing that sets them
apart, 1.0 that it separates them perfectly. Unlike Fréchet distances or PRDC it needs no
feature space chosen in advance; the detector learns whatever differs (texture, noise, blur,
checkerboard artefacts, anatomy), so it has teeth where feature statistics may not.

Procedure (deterministic given `seed`):

1. Match the two sides by label: for every distinct label row (class, or finding combination)
   keep the same number of images on both sides (the smaller count, a seeded random choice of
   the larger side), and at most `max_per_side` images a side in all, spread over the label
   rows in proportion. So the detector cannot win on class proportions alone (e.g. synthetic
   images drawn equally per class against an imbalanced real holdout): it has to find how
   the images of one class differ.
2. Split every label row of each side 50/50 by a seeded permutation into a training and a test
   half; the test half is balanced, real against synthetic, class by class. With separate real
   training images (`training_real`, e.g. the generator's training set), every real image is
   in the test half instead (against at most half of the synthetic images of its label row),
   and the detector trains on those real images against the synthetic images the test half
   left over: a small holdout then limits only the test.
3. Train the detector (Adam, fixed number of epochs, last weights; no early stopping, nothing is
   selected on the test half) on the training half, inputs scaled to [-1, 1].
4. Score the test half: AUC with a DeLong 95% interval (it reflects the finite test set, not the
   training randomness; compare with `real_vs_real`, the same detector on two disjoint real
   sets, for what chance and any shift between two real sets give), AUC per condition group
   (common.conditions.condition_groups), and the held-out synthetic images the detector
   finds most and least real.
"""

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import norm, rankdata
from torch import nn

from common.conditions import condition_groups
from evaluation.metrics.auc import per_class_auc

DEFAULT_EPOCHS = 30
DEFAULT_MAX_PER_SIDE = 2000
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
EXAMPLES = 8


@dataclass(frozen=True, eq=False)
class RealismResult:
    """Held-out results of one detector.

    auc: ROC AUC of the detector's realness scores, real (positive) against synthetic, on the
        test half. 0.5: indistinguishable; 1.0: every synthetic image detected.
    auc_interval: DeLong 95% interval of auc (clipped to [0, 1]).
    per_class: {condition group name: AUC on the test images of that group}, None where a group
        has no held-out image on one side (groups as in common.conditions.condition_groups).
    per_class_interval: {group: DeLong 95% interval of its AUC}, None where per_class is.
    per_class_counts: {group: [held-out real, held-out synthetic]}.
    most_real / least_real: indices into the `synthetic` array of the held-out synthetic images
        with the highest / lowest realness scores, most extreme first.
    scores: realness score (logit) per synthetic image, shape (len(synthetic),); NaN for images
        not in the test half (not used, or used for training).
    real_scores: the same for the real images, shape (len(real),).
    train_auc: AUC on the training half (how well the detector fit it), for diagnosis.
    counts: images a side used for training and for testing.
    """

    auc: float
    auc_interval: tuple[float, float]
    per_class: dict[str, float | None]
    per_class_interval: dict[str, tuple[float, float] | None]
    per_class_counts: dict[str, list[int]]
    most_real: np.ndarray
    least_real: np.ndarray
    scores: np.ndarray
    real_scores: np.ndarray
    train_auc: float
    counts: dict[str, int]
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-image scores)."""
        return {
            "auc": self.auc,
            "auc_ci95": list(self.auc_interval),
            "per_class": self.per_class,
            "per_class_ci95": {
                name: None if ci is None else list(ci)
                for name, ci in self.per_class_interval.items()
            },
            "per_class_counts": self.per_class_counts,
            "train_auc": self.train_auc,
            "images": self.counts,
            "most_real": [int(i) for i in self.most_real],
            "least_real": [int(i) for i in self.least_real],
            "settings": self.settings,
        }


class Detector(nn.Module):
    """Stride-2 3x3 convolutions with LeakyReLU down to about 4x4 (3 stages at 28-32 px, one
    more per doubling), global average pooling, a linear realness logit."""

    def __init__(self, resolution: int, width: int = 32):
        super().__init__()
        stages = max(3, math.ceil(math.log2(resolution / 4)))
        channels = [1] + [width * 2 ** min(s, 2) for s in range(stages)]  # 32-64-128-128...
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0)[:, None]


def _check(name: str, images: np.ndarray, labels: np.ndarray, classes: int) -> None:
    if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1] != images.shape[2]:
        raise ValueError(f"{name} must be uint8 (N, R, R), got {images.dtype} {images.shape}")
    if labels.shape != (len(images), classes):
        raise ValueError(f"{name} labels must be ({len(images)}, {classes}), got {labels.shape}")


def _match(
    real_labels: np.ndarray,
    synthetic_labels: np.ndarray,
    limit: int,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per distinct label row, the same number of (real rows, synthetic rows), a seeded random
    choice of the larger side, at most `limit` a side in all (spread over the label rows in
    proportion)."""
    real_keys = (real_labels > 0.5).astype(np.int8)
    synthetic_keys = (synthetic_labels > 0.5).astype(np.int8)
    rows = np.unique(np.concatenate([real_keys, synthetic_keys]), axis=0)
    groups = []
    for row in rows:
        r = np.flatnonzero((real_keys == row).all(axis=1))
        s = np.flatnonzero((synthetic_keys == row).all(axis=1))
        if min(len(r), len(s)):
            groups.append((r, s))
    matched = sum(min(len(r), len(s)) for r, s in groups)
    scale = min(1.0, limit / matched) if matched else 0.0
    pairs = []
    for r, s in groups:
        k = int(round(min(len(r), len(s)) * scale))
        if k:
            pairs.append((rng.permutation(r)[:k], rng.permutation(s)[:k]))
    return pairs


def _rows(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def _match_and_split(
    real_labels: np.ndarray,
    synthetic_labels: np.ndarray,
    max_per_side: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(real train, synthetic train, real test, synthetic test) row indices, matched per
    distinct label row, split 50/50 within each."""
    pairs = _match(real_labels, synthetic_labels, max_per_side, rng)
    return (
        _rows([r[: len(r) // 2] for r, _ in pairs]),
        _rows([s[: len(s) // 2] for _, s in pairs]),
        _rows([r[len(r) // 2 :] for r, _ in pairs]),
        _rows([s[len(s) // 2 :] for _, s in pairs]),
    )


def _match_with_training_real(
    real_labels: np.ndarray,
    synthetic_labels: np.ndarray,
    training_real_labels: np.ndarray,
    max_per_side: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(training-real train, synthetic train, real test, synthetic test): every real image is
    kept for the test, matched with at most half of the synthetic images of its label row; the
    detector trains on the synthetic images left over, matched with the separate real
    training images."""
    keys = (synthetic_labels > 0.5).astype(np.int8)
    candidates = np.sort(
        np.concatenate(
            [
                rng.permutation(np.flatnonzero((keys == row).all(axis=1)))[: -(-count // 2)]
                for row, count in zip(*np.unique(keys, axis=0, return_counts=True))
            ]
        )
    )
    test = _match(real_labels, synthetic_labels[candidates], max_per_side, rng)
    real_test = _rows([r for r, _ in test])
    synthetic_test = _rows([candidates[s] for _, s in test])
    left = np.setdiff1d(np.arange(len(synthetic_labels)), synthetic_test)
    train = _match(training_real_labels, synthetic_labels[left], max_per_side, rng)
    return (
        _rows([r for r, _ in train]),
        _rows([left[s] for _, s in train]),
        real_test,
        synthetic_test,
    )


def _delong_interval(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) 95% interval for the AUC of scores pos (positives) vs neg, from
    midranks (Sun & Xu 2014), ties counted half."""
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        return (0.0, 1.0)
    all_ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (all_ranks[:m] - rankdata(pos)) / n  # per positive: share of negatives below it
    v01 = 1.0 - (all_ranks[m:] - rankdata(neg)) / m  # per negative: share of positives above
    auc = v10.mean()
    se = math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    z = norm.ppf(0.975)
    return (float(max(0.0, auc - z * se)), float(min(1.0, auc + z * se)))


def _auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    if len(pos) == 0 or len(neg) == 0:
        return None
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])[:, None]
    return float(per_class_auc(labels, np.concatenate([pos, neg])[:, None])[0])


@torch.no_grad()
def _score(model: nn.Module, images: torch.Tensor, device: torch.device) -> np.ndarray:
    model.eval()
    out = [model(images[i : i + 512].to(device)).float().cpu() for i in range(0, len(images), 512)]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def _threads(threads: int | None, resolution: int, device: torch.device) -> int:
    """At 28-32 px the layers are too small for a second thread to help (measured on 2 cores:
    the same time), while a thread pool that shares its cores with another busy process can be
    several times slower; larger images gain about 1.3-1.5x from 2 threads."""
    if threads is not None:
        return max(1, int(threads))
    if device.type != "cpu" or resolution <= 32:
        return 1
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return max(1, min(torch.get_num_threads(), available or os.cpu_count() or 1))


def _train(
    images: torch.Tensor,
    targets: torch.Tensor,
    resolution: int,
    epochs: int,
    seed: int,
    device: torch.device,
) -> nn.Module:
    torch.manual_seed(seed)
    model = Detector(resolution).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()
    batches = np.random.default_rng(seed)
    images, targets = images.to(device), targets.to(device)
    model.train()
    for _ in range(epochs):
        order = torch.from_numpy(batches.permutation(len(images))).to(device)
        for start in range(0, len(images), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            x, y = images[rows], targets[rows]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()
    return model


def detect(
    *,
    real: np.ndarray,
    synthetic: np.ndarray,
    real_labels: np.ndarray,
    synthetic_labels: np.ndarray,
    class_names: Sequence[str],
    multi_label: bool,
    seed: int,
    epochs: int = DEFAULT_EPOCHS,
    max_per_side: int = DEFAULT_MAX_PER_SIDE,
    examples: int = EXAMPLES,
    device: torch.device | str = "cpu",
    threads: int | None = None,
    training_real: np.ndarray | None = None,
    training_real_labels: np.ndarray | None = None,
) -> RealismResult:
    """Train the realism detector on half of the label-matched real and synthetic images and
    score the other half (see the module docstring).

    training_real, training_real_labels: more real images (e.g. the generator's own training
    images) for the detector to train on. Then every image in `real` is scored (none trained
    on) against as many held-out synthetic images, and the detector trains on the synthetic
    images left over against training_real: a small holdout no longer limits what the
    detector learns.

    real, synthetic: uint8 (N, R, R) images of one resolution. real_labels, synthetic_labels:
    (N, C) one-hot (single-label) or 0/1 (multi-label) rows over class_names. The real images
    should be ones the generator did not train on (the holdout). examples: how many indices
    most_real and least_real hold (at most). threads: CPU threads for torch while it runs
    (restored after); None: 1 up to 32 px, else every core this process may use.
    """
    class_names = tuple(class_names)
    real_labels = np.asarray(real_labels)
    synthetic_labels = np.asarray(synthetic_labels)
    _check("real", real, real_labels, len(class_names))
    _check("synthetic", synthetic, synthetic_labels, len(class_names))
    if real.shape[1:] != synthetic.shape[1:]:
        raise ValueError(f"real {real.shape[1:]} and synthetic {synthetic.shape[1:]} differ")
    if epochs < 1 or max_per_side < 4:
        raise ValueError(f"need epochs >= 1 and max_per_side >= 4, got {epochs}, {max_per_side}")
    device = torch.device(device)
    rng = np.random.default_rng(seed)
    if training_real is None:
        real_train, synthetic_train, real_test, synthetic_test = _match_and_split(
            real_labels, synthetic_labels, max_per_side, rng
        )
        train_source = real
    else:
        training_real_labels = np.asarray(training_real_labels)
        _check("training_real", training_real, training_real_labels, len(class_names))
        real_train, synthetic_train, real_test, synthetic_test = _match_with_training_real(
            real_labels, synthetic_labels, training_real_labels, max_per_side, rng
        )
        train_source = training_real
    if min(len(real_train), len(real_test)) < 2:
        raise ValueError(
            f"too few images with matching labels on both sides ({len(real_train)} train, "
            f"{len(real_test)} test a side); need at least 4 a side"
        )

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(_threads(threads, real.shape[1], device))
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            x = torch.cat(
                [_to_tensor(train_source[real_train]), _to_tensor(synthetic[synthetic_train])]
            )
            y = torch.cat([torch.ones(len(real_train)), torch.zeros(len(synthetic_train))])
            model = _train(x, y, real.shape[1], epochs, seed, device)
            train_scores = _score(model, x, device)
            real_held = _score(model, _to_tensor(real[real_test]), device)
            synthetic_held = _score(model, _to_tensor(synthetic[synthetic_test]), device)
    finally:
        torch.set_num_threads(previous_threads)

    n = len(real_train)
    auc = _auc(real_held, synthetic_held)
    per_class, per_class_interval, per_class_counts = {}, {}, {}
    real_groups = dict(condition_groups(real_labels[real_test], class_names, multi_label))
    synthetic_groups = condition_groups(synthetic_labels[synthetic_test], class_names, multi_label)
    for name, rows in synthetic_groups:
        pos, neg = real_held[real_groups[name]], synthetic_held[rows]
        per_class[name] = _auc(pos, neg)
        per_class_interval[name] = None if per_class[name] is None else _delong_interval(pos, neg)
        per_class_counts[name] = [len(real_groups[name]), len(rows)]
    order = np.argsort(-synthetic_held, kind="stable")
    k = min(examples, len(order))
    scores = np.full(len(synthetic), np.nan)
    scores[synthetic_test] = synthetic_held
    real_scores = np.full(len(real), np.nan)
    real_scores[real_test] = real_held
    return RealismResult(
        auc=auc,
        auc_interval=_delong_interval(real_held, synthetic_held),
        per_class=per_class,
        per_class_interval=per_class_interval,
        per_class_counts=per_class_counts,
        most_real=synthetic_test[order[:k]],
        least_real=synthetic_test[order[::-1][:k]],
        scores=scores,
        real_scores=real_scores,
        train_auc=_auc(train_scores[:n], train_scores[n:]),
        counts={
            "train_per_side": int(n),
            "test_per_side": int(len(real_test)),
            "real_available": int(len(real)),
            "synthetic_available": int(len(synthetic)),
        },
        settings={
            "seed": seed,
            "epochs": epochs,
            "max_per_side": max_per_side,
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "resolution": int(real.shape[1]),
            "trained_on_separate_real_images": training_real is not None,
        },
    )


def real_vs_real(
    *,
    real_a: np.ndarray,
    real_b: np.ndarray,
    labels_a: np.ndarray,
    labels_b: np.ndarray,
    class_names: Sequence[str],
    multi_label: bool,
    seed: int,
    epochs: int = DEFAULT_EPOCHS,
    max_per_side: int = DEFAULT_MAX_PER_SIDE,
    examples: int = EXAMPLES,
    device: torch.device | str = "cpu",
    threads: int | None = None,
    training_real: np.ndarray | None = None,
    training_real_labels: np.ndarray | None = None,
) -> RealismResult:
    """The reference row: the same detector on two disjoint real sets, real_a in the role of
    the real images and real_b in that of the synthetic ones (most_real etc. index real_b).
    About 0.5 when the two sets come from one distribution; above it, the detector finds a
    shift between them (e.g. another site or acquisition) or memorises near-duplicates."""
    return detect(
        real=real_a,
        synthetic=real_b,
        real_labels=labels_a,
        synthetic_labels=labels_b,
        class_names=class_names,
        multi_label=multi_label,
        seed=seed,
        epochs=epochs,
        max_per_side=max_per_side,
        examples=examples,
        device=device,
        threads=threads,
        training_real=training_real,
        training_real_labels=training_real_labels,
    )
