"""How far matching low-order image statistics could move the realism detector.

Draws 1000 images per class from a finished run's generator and scores the evaluation's
detector (evaluation/realism.py) on the screening split of benchmarks/realism_screen.py
(trained on the screening train images, scored on the screening holdout; `val` is not read),
once as drawn and once after each post-processing that matches, per class, a statistic of the
screening train images exactly:

- hist: the intensity histogram (quantile mapping of the pixel values);
- pixel: every pixel's mean and standard deviation;
- spectrum: the mean power spectrum (every image's Fourier amplitudes rescaled);
- spectrum+hist: the spectrum, then the histogram.

The statistics are taken without noise, so this is an upper bound on what releasing them under
DP and post-processing the synthetic images with them could give. The run's generator trained
on the whole training split (the screening holdout included): the screen measures how far each
matching moves the detector, not the detector's level on unseen films.

usage: python benchmarks/matched_statistics_screen.py RUN_DIR [--set K=V ...] [--seed 0]
    [--out runs/matched-statistics-screen.jsonl]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realism_screen import detect_on_screen, screening_split, synthetic_set  # noqa: E402

from common.config import load_config  # noqa: E402
from evaluation.synthetic import load_run_generator  # noqa: E402


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def match_histogram(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Map the pixel values of `images` onto the quantiles of `reference`'s pixel values."""
    values = images.ravel().astype(np.float64)
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable") / (len(values) - 1)
    target = np.sort(reference.ravel().astype(np.float64))
    mapped = np.interp(ranks * (len(target) - 1), np.arange(len(target)), target)
    return _to_uint8(mapped.reshape(images.shape))


def match_pixels(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Every pixel's mean and standard deviation set to `reference`'s."""
    images = images.astype(np.float64)
    standardised = (images - images.mean(0)) / (images.std(0) + 1e-3)
    return _to_uint8(standardised * reference.std(0) + reference.mean(0))


def match_spectrum(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Every image's Fourier amplitudes rescaled so the mean power spectrum is `reference`'s."""
    spectra = np.fft.fft2(images.astype(np.float64))
    amplitude = np.sqrt((np.abs(spectra) ** 2).mean(0))
    target = np.sqrt((np.abs(np.fft.fft2(reference.astype(np.float64))) ** 2).mean(0))
    return _to_uint8(np.real(np.fft.ifft2(spectra * (target / (amplitude + 1e-6)))))


MATCHINGS = {
    "hist": [match_histogram],
    "pixel": [match_pixels],
    "spectrum": [match_spectrum],
    "spectrum+hist": [match_spectrum, match_histogram],
}


def matched(images: np.ndarray, labels: np.ndarray, train, steps) -> np.ndarray:
    """`images` with every class's statistics matched to that class's screening train images."""
    out = images.copy()
    for column in range(labels.shape[1]):
        rows = labels[:, column] > 0.5
        reference = train.images[train.labels[:, column] > 0.5]
        for step in steps:
            out[rows] = step(out[rows], reference)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=Path("runs/matched-statistics-screen.jsonl"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    config = load_config(str(args.run_dir / "config.yaml"), args.set)
    train, holdout = screening_split(config, args.holdout_fraction, args.seed)
    generator, _, _ = load_run_generator(args.run_dir)
    synthetic = synthetic_set(generator, holdout, 1000, args.seed)
    variants = {"as drawn": synthetic.images}
    for name, steps in MATCHINGS.items():
        variants[name] = matched(synthetic.images, synthetic.labels, train, steps)
    row = {"run": str(args.run_dir), "seed": args.seed, "detector_auc": {}}
    for name, images in variants.items():
        realism = detect_on_screen(images, synthetic.labels, train, holdout, args.seed)
        row["detector_auc"][name] = round(realism.auc, 4)
        print(f"{name}: detector AUC {realism.auc:.4f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as log:
        log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
