"""Screen DP-GAN training levers quickly: one site, in process, no Flower.

One site's share of an existing run's training images (1/num_sites, as in an iid
federation) trains the site's DPGANTrainer for the same number of DP steps, noise calibrated
to the same epsilon by the config's accountant. Then a TSTR classifier (the evaluation's
schedule) trained on generated images is scored on the run's holdout, and recall/coverage are
measured in the run's cached real-classifier feature space. The last generator and
exponential moving averages of it (per generator step, one per `--ema` decay) are scored.

This is a proxy for ranking levers, not the target measurement: the targets come from
`privsynth run` + `privsynth evaluate` (benchmarks/utility_targets.sh).

usage: python benchmarks/dpgan_screen.py RUN_DIR --epsilon 10 [--set SECTION.KEY=VALUE ...]
"""

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.training import DPGANTrainer, DPSettings  # noqa: E402
from common.conditions import condition_rows
from common.config import config_from_dict, config_to_dict  # noqa: E402
from common.privacy.accounting import calibrate_noise_multiplier  # noqa: E402
from common.run_data import load_run  # noqa: E402
from common.run_folder import RunFolder  # noqa: E402
from evaluation.distribution import distribution_metrics  # noqa: E402
from evaluation.evaluate import _subsample  # noqa: E402
from evaluation.real_classifier import real_classifier  # noqa: E402
from evaluation.training import (  # noqa: E402
    TrainingSettings,
    scores_and_features,
    steps_per_epoch,
    train_classifier,
)
from server.outputs import generate  # noqa: E402


def _score(generator, run, real_model, real_features, train_settings, steps, per_class=1000):
    images, labels = [], []
    for i, (_, condition) in enumerate(condition_rows(run.holdout.class_names, False)):
        images.append(generate(generator.eval(), condition, per_class, seed=i))
        labels.append(np.repeat(condition[None], per_class, axis=0))
    images, labels = np.concatenate(images), np.concatenate(labels)
    model = train_classifier(images, labels, False, train_settings, steps, "TSTR")
    holdout = run.holdout
    scores, _ = scores_and_features(model, holdout.images, False)
    auc = roc_auc_score(holdout.labels.argmax(1), scores[:, 1])
    _, fake_features = scores_and_features(real_model, images, False)
    prdc = distribution_metrics(real_features, fake_features)
    return {"tstr_auc": auc, **{k: prdc[k] for k in ("precision", "recall", "coverage")}}


def _pretrain(trainer, site, model, training, steps, seed):
    """Non-private GAN training on public phantom chest X-rays with random conditions."""
    from common.data import ImageSet
    from common.data.phantom import PhantomOptions, generate_phantom

    phantom = generate_phantom(
        PhantomOptions(num_patients=len(site), images_per_patient=1, seed=seed + 100),
        site.resolution,
    )
    rng = np.random.default_rng(seed)
    labels = np.eye(site.num_classes, dtype=np.float32)[
        rng.integers(0, site.num_classes, len(phantom))
    ]
    public = ImageSet(phantom.images, labels, site.class_names, False)
    rate = training.batch_size / len(public)
    pre = DPGANTrainer(
        public,
        np.arange(len(public)),
        model,
        training,
        DPSettings(0.0, 1.0, rate),
        torch.device("cpu"),
    )
    for _ in tqdm(range(steps), desc="public pretraining"):
        pre.train(1)
    trainer.load(generator=pre.generator.state_dict(), discriminator=pre.discriminator.state_dict())


def one_site_trainer(run, config, epsilon: float, steps: int, seed: int):
    """(trainer, site images, noise multiplier): a random 1/num_sites share of the run's
    training images, as an iid federation gives one site, with noise calibrated to `epsilon`
    over `steps` DP steps by the config's accountant (0 for epsilon inf)."""
    site_rows = np.random.default_rng(seed).permutation(len(run.members))
    site = run.members.subset(np.sort(site_rows[: len(run.members) // config.federation.num_sites]))
    rate = config.training.batch_size / len(site)
    sigma = calibrate_noise_multiplier(
        target_epsilon=epsilon,
        delta=config.privacy.delta,
        sample_rate=rate,
        steps=steps,
        accountant=config.privacy.accountant,
    )
    trainer = DPGANTrainer(
        site,
        np.arange(len(site)),
        config.model,
        config.training,
        DPSettings(sigma, config.privacy.max_grad_norm, rate),
        torch.device("cpu"),
    )
    return trainer, site, sigma


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--ema", type=float, nargs="+", default=[0.99])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--pretrain-steps", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/screen.jsonl"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    run = load_run(args.run_dir)
    # --set goes through the config parser: unknown keys and bad values are named.
    config = config_from_dict(config_to_dict(run.config), args.set)
    training, model = config.training, config.model
    trainer, site, sigma = one_site_trainer(run, config, args.epsilon, args.steps, args.seed)
    if args.pretrain_steps:
        _pretrain(trainer, site, model, training, args.pretrain_steps, args.seed)
    emas = {decay: copy.deepcopy(trainer.generator) for decay in args.ema}
    started = time.perf_counter()
    g_steps = 0
    for _ in tqdm(range(args.steps), desc="DP steps"):
        if trainer.train(1)["g_steps"]:
            g_steps += 1
            with torch.no_grad():
                for decay, ema in emas.items():
                    for e, p in zip(ema.parameters(), trainer.generator.parameters()):
                        e.lerp_(p, 1 - decay)
    train_s = time.perf_counter() - started

    eval_settings = TrainingSettings()
    real_train = _subsample(run.members, 3000, eval_settings.seed)
    steps = steps_per_epoch(len(real_train), eval_settings.batch_size)
    real_model, _, _ = real_classifier(
        real_train, eval_settings, steps, RunFolder(args.run_dir).cache("evaluation")
    )
    _, real_features = scores_and_features(real_model, run.holdout.images, False)
    row = {
        "epsilon": args.epsilon,
        "sigma": sigma,
        "steps": args.steps,
        "set": args.set,
        "pretrain_steps": args.pretrain_steps,
        "seed": args.seed,
        "train_s": round(train_s),
        "g_steps": g_steps,
        "last": _score(trainer.generator, run, real_model, real_features, eval_settings, steps),
        **{
            f"ema{decay:g}": _score(ema, run, real_model, real_features, eval_settings, steps)
            for decay, ema in emas.items()
        },
    }
    print(json.dumps(row))
    with open(args.out, "a") as log:
        log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
