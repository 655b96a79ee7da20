"""TSTR over several evaluation draws. Each draw generates a new synthetic set and trains the
TSTR classifier from a new seed, so the spread is the measurement noise of one evaluation;
the bootstrap intervals cover the sampling of the holdout only."""

from dataclasses import replace

import numpy as np
import torch

from common.device import CPU
from common.run_data import RunData
from evaluation.metrics.auc import per_class_auc
from evaluation.synthetic import generate_per_class
from evaluation.training import TrainingSettings, scores_and_features, train_classifier


def tstr_draw(
    run: RunData,
    training: TrainingSettings,
    epoch_steps: int,
    samples_per_class: int,
    seed: int,
    *,
    device: torch.device = CPU,
) -> float:
    """The TSTR macro AUC `privsynth evaluate --samples-per-class N --seed seed` reports."""
    synthetic = generate_per_class(run.run_dir, samples_per_class, seed, device=device)
    model = train_classifier(
        synthetic.images,
        synthetic.labels,
        synthetic.multi_label,
        replace(training, seed=seed),
        epoch_steps,
        f"TSTR, draw {seed}",
        device=device,
    )
    scores, _ = scores_and_features(model, run.holdout.images, run.holdout.multi_label)
    return float(np.nanmean(per_class_auc(run.holdout.labels, scores)))


def tstr_repeats(
    first: float | None,
    run: RunData,
    training: TrainingSettings,
    epoch_steps: int,
    samples_per_class: int,
    repeats: int,
    *,
    device: torch.device,
) -> dict:
    """`first` is the evaluation's own draw (seed training.seed); the others use the next
    seeds, as `--seed` would."""
    seeds = [training.seed + r for r in range(repeats)]
    first = float("nan") if first is None else first  # no class had both labels
    aucs = [first] + [
        tstr_draw(run, training, epoch_steps, samples_per_class, s, device=device)
        for s in seeds[1:]
    ]
    return {
        "seeds": seeds,
        "macro_auc": aucs,
        "mean": float(np.nanmean(aucs)),
        "sd": float(np.nanstd(aucs, ddof=1)),
    }
