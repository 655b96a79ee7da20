"""Screen generator levers for realism and utility on a held-out part of the training split.

The preset's training images are split (seeded, per class) into a screening train part and a
screening holdout (`--holdout-fraction`); `val`, the benchmark's holdout, is never read. One
site's share of the screening train part (1/num_sites of it, as an iid federation gives a
site) trains the site's DPGANTrainer for `--steps` discriminator steps, noise calibrated to
`--epsilon` over them by the preset's accountant (inf: no noise, no clipping). With
`--release-share F`, the generator first starts from the preset's mean-embedding fit to the
sites' releases (every site's share releases once, at epsilon F x `--epsilon`), and the DP
steps get the rest of the budget (calibrated over the release and the steps together). The
start, the last generator and an exponential moving average of it (per generator step) are
scored:

- realism: the evaluation's detector (evaluation/realism.py), trained on the screening train
  images against synthetic ones, scored on the screening holdout against other synthetic ones;
- utility: TSTR macro AUC on the screening holdout (the evaluation's classifier and schedule),
  beside TRTR from the screening train images.

A ranking proxy for levers, not the target measurement (that is `privsynth run` + `privsynth
evaluate` on `val`). Appends one JSON line per run to --out.

usage: python benchmarks/realism_screen.py PRESET --set data.medmnist.path=... [--set K=V ...]
    [--epsilon inf] [--steps 4000] [--seed 0] [--release-share F] [--figure PNG]
    [--out runs/realism-screen.jsonl]
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.mean_embedding import noisy_class_sums  # noqa: E402
from client.training import DPGANTrainer, DPSettings  # noqa: E402
from common.conditions import condition_rows  # noqa: E402
from common.config import load_config  # noqa: E402
from common.data import ImageSet  # noqa: E402
from common.data.federation import load_dataset  # noqa: E402
from common.data.splits import split_holdout  # noqa: E402
from common.mean_embedding import features_for  # noqa: E402
from common.models import build_models  # noqa: E402
from common.models.weight_average import WeightAverage  # noqa: E402
from common.prior.file import load_prior, start_from  # noqa: E402
from common.privacy.accounting import (  # noqa: E402
    calibrate_noise_multiplier,
    calibrate_release_noise,
)
from evaluation.figures import sample_comparison  # noqa: E402
from evaluation.metrics.auc import per_class_auc  # noqa: E402
from evaluation.realism import detect  # noqa: E402
from evaluation.training import (  # noqa: E402
    TrainingSettings,
    scores_and_features,
    steps_per_epoch,
    train_classifier,
)
from server.mean_embedding import fit_generator  # noqa: E402
from server.outputs import generate  # noqa: E402


def screening_split(config, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """(screening train, screening holdout) from the preset's training images, per class."""
    data = load_dataset(config)
    train, _ = split_holdout(
        data, config.data.holdout_fraction, config.data.holdout_split, config.seed
    )
    rng = np.random.default_rng(seed + 1000)
    keys = (data.labels[train] > 0.5).astype(np.int8)
    held = []
    for row in np.unique(keys, axis=0):
        rows = train[(keys == row).all(axis=1)]
        held.append(rng.permutation(rows)[: int(round(fraction * len(rows)))])
    held = np.sort(np.concatenate(held))
    return data.subset(np.setdiff1d(train, held)), data.subset(held)


def synthetic_set(generator, reference: ImageSet, per_class: int, seed: int) -> ImageSet:
    images, labels = [], []
    for i, (_, condition) in enumerate(condition_rows(reference.class_names, False)):
        images.append(generate(generator.eval(), condition, per_class, seed=seed * 100 + i))
        labels.append(np.repeat(condition[None], per_class, axis=0))
    return ImageSet(
        np.concatenate(images),
        np.concatenate(labels).astype(np.float32),
        reference.class_names,
        reference.multi_label,
    )


def tstr(train: ImageSet, holdout: ImageSet, seed: int) -> float:
    settings = TrainingSettings(seed=seed)
    steps = steps_per_epoch(min(len(train), 3000), settings.batch_size)
    model = train_classifier(train.images, train.labels, train.multi_label, settings, steps, "clf")
    scores, _ = scores_and_features(model, holdout.images, holdout.multi_label)
    return float(np.nanmean(per_class_auc(holdout.labels, scores)))


def detect_on_screen(
    images: np.ndarray, labels: np.ndarray, train: ImageSet, holdout: ImageSet, seed: int
):
    """The evaluation's detector of `images` trained on the screening train images, scored on
    the screening holdout."""
    return detect(
        real=holdout.images,
        synthetic=images,
        real_labels=holdout.labels,
        synthetic_labels=labels,
        class_names=holdout.class_names,
        multi_label=holdout.multi_label,
        seed=seed,
        training_real=train.images,
        training_real_labels=train.labels,
    )


def score(generator, train: ImageSet, holdout: ImageSet, seed: int, shown: dict) -> dict:
    """Realism and TSTR of `generator`; keeps its synthetic set in `shown` for the figure."""
    synthetic = synthetic_set(generator, holdout, 1000, seed)
    shown[len(shown)] = synthetic
    realism = detect_on_screen(synthetic.images, synthetic.labels, train, holdout, seed)
    return {
        "detector_auc": round(realism.auc, 4),
        "detector_per_class": {k: v and round(v, 4) for k, v in realism.per_class.items()},
        "tstr_auc": round(tstr(synthetic, holdout, seed), 4),
    }


def release_start(config, train: ImageSet, epsilon: float, seed: int) -> tuple[dict, float]:
    """(generator fitted to every site share's release, release noise multiplier)."""
    sigma = calibrate_release_noise(
        history=[],
        target_epsilon=epsilon,
        delta=config.privacy.delta,
        accountant=config.privacy.accountant,
    )
    order = np.random.default_rng(seed).permutation(len(train))
    releases = [
        noisy_class_sums(
            train.subset(np.sort(rows)),
            rows,
            features_for(config),
            noise_multiplier=sigma,
            count_share=config.mean_embedding.count_share,
        )
        for rows in np.array_split(order, config.federation.num_sites)
    ]
    start, discriminator = build_models(train.num_classes, config.data.resolution, config.model)
    if config.model.prior:
        start_from(
            load_prior(config.model.prior, config),
            start,
            discriminator,
            class_names=train.class_names,
            multi_label=train.multi_label,
        )
    state, _ = fit_generator(
        config, train.num_classes, train.multi_label, start.state_dict(), releases
    )
    return state, sigma


def comparison_figure(shown: dict, names: list[str], holdout: ImageSet, path: Path) -> None:
    """Per scored generator and class, 8 synthetic images beside 8 screening-holdout ones."""
    rows = []
    for name, synthetic in zip(names, shown.values()):
        for k, class_name in enumerate(holdout.class_names):
            fake = synthetic.images[synthetic.labels[:, k] > 0.5][:8]
            real = holdout.images[holdout.labels[:, k] > 0.5][:8]
            rows.append((f"{name}: {class_name}", fake, real))
    sample_comparison(rows, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("preset")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--epsilon", type=float, default=math.inf)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    parser.add_argument("--pooled", action="store_true", help="one site with all the images")
    parser.add_argument("--trtr", action="store_true", help="also score TRTR")
    parser.add_argument("--release-share", type=float, default=0.0)
    parser.add_argument("--figure", type=Path, help="synthetic | real images, as a PNG")
    parser.add_argument("--out", type=Path, default=Path("runs/realism-screen.jsonl"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    config = load_config(args.preset, args.set)
    train, holdout = screening_split(config, args.holdout_fraction, args.seed)
    share = np.random.default_rng(args.seed).permutation(len(train))
    if not args.pooled:
        share = share[: len(train) // config.federation.num_sites]
    site = train.subset(np.sort(share))
    rate = min(1.0, config.training.batch_size / len(site))
    start, release_sigma, history = None, 0.0, []
    if args.release_share:
        start, release_sigma = release_start(
            config, train, args.release_share * args.epsilon, args.seed
        )
        history = [(release_sigma, 1.0, 1)] if math.isfinite(args.epsilon) else []
    sigma = 0.0
    if math.isfinite(args.epsilon) and args.steps:
        sigma = calibrate_noise_multiplier(
            target_epsilon=args.epsilon,
            delta=config.privacy.delta,
            sample_rate=rate,
            steps=args.steps,
            accountant=config.privacy.accountant,
            history=history,
        )
    trainer = DPGANTrainer(
        site,
        np.arange(len(site)),
        config.model,
        config.training,
        DPSettings(sigma, config.privacy.max_grad_norm, rate),
        torch.device("cpu"),
        secret_seed=args.seed,
    )
    scores, shown = {}, {}
    if config.model.prior:
        start_from(
            load_prior(config.model.prior, config),
            trainer.generator,
            trainer.discriminator,
            class_names=train.class_names,
            multi_label=train.multi_label,
        )
        scores["prior"] = score(trainer.generator, train, holdout, args.seed, shown)
    if start is not None:
        trainer.load(generator=start)
        scores["start"] = score(trainer.generator, train, holdout, args.seed, shown)
    ema = WeightAverage(trainer.generator, decay=args.ema)
    started = time.perf_counter()
    g_steps = 0
    for _ in tqdm(range(args.steps), desc="D steps", mininterval=10):
        if trainer.train(1)["g_steps"]:
            g_steps += 1
            ema.update()
    train_s = time.perf_counter() - started
    row = {
        "preset": args.preset,
        "set": args.set,
        "epsilon": args.epsilon,
        "sigma": round(sigma, 4),
        "release_share": args.release_share,
        "release_sigma": round(release_sigma, 4),
        "steps": args.steps,
        "site_images": len(site),
        "seed": args.seed,
        "train_s": round(train_s),
        "g_steps": g_steps,
        **scores,
        "last": score(trainer.generator, train, holdout, args.seed, shown),
        f"ema{args.ema:g}": score(ema.model, train, holdout, args.seed, shown),
    }
    if args.figure:
        names = [*scores, "last", f"ema{args.ema:g}"]
        comparison_figure(shown, names, holdout, args.figure)
    if args.trtr:
        row["trtr_auc"] = round(tstr(train, holdout, args.seed), 4)
    print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as log:
        log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
