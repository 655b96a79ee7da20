"""How much of a run's TSTR AUC is the evaluation's own draw?

`privsynth evaluate --samples-per-class N --seed S` draws one synthetic set from the run's
generator.pt and trains one TSTR classifier, both from seed S. This script repeats exactly
that for several seeds on the same run, so the spread it prints is the measurement noise of
one evaluation, apart from the seed-to-seed spread of training. Rows are appended to
runs/tstr_draws.jsonl.

usage: python benchmarks/tstr_draws.py RUN_DIR [RUN_DIR ...] --seeds 0 1 2
       [--samples-per-class 1000]
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.run_data import load_run  # noqa: E402
from evaluation.evaluate import EvaluationSettings, _subsample  # noqa: E402
from evaluation.metrics.auc import per_class_auc  # noqa: E402
from evaluation.synthetic import generate_per_class  # noqa: E402
from evaluation.training import scores_and_features, steps_per_epoch, train_classifier  # noqa: E402


def tstr_auc(run_dir: Path, seed: int, samples_per_class: int) -> float:
    """The TSTR macro AUC `privsynth evaluate --seed seed` reports for this run."""
    run = load_run(run_dir)
    settings = EvaluationSettings()
    training = dataclasses.replace(settings.training, seed=seed)
    real_train = _subsample(run.members, settings.max_train_images, seed)
    steps = steps_per_epoch(len(real_train), training.batch_size)
    synthetic = generate_per_class(run_dir, samples_per_class, seed)
    model = train_classifier(
        synthetic.images, synthetic.labels, synthetic.multi_label, training, steps, "TSTR"
    )
    scores, _ = scores_and_features(model, run.holdout.images, run.holdout.multi_label)
    return float(np.nanmean(per_class_auc(run.holdout.labels, scores)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples-per-class", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("runs/tstr_draws.jsonl"))
    args = parser.parse_args()
    for run_dir in args.run_dirs:
        aucs = []
        for seed in args.seeds:
            auc = tstr_auc(run_dir, seed, args.samples_per_class)
            aucs.append(auc)
            row = {"run": str(run_dir), "seed": seed, "tstr_auc": auc}
            with open(args.out, "a") as log:
                log.write(json.dumps(row) + "\n")
        print(
            f"{run_dir}: TSTR {np.mean(aucs):.3f} ± {np.std(aucs, ddof=1):.3f} over seeds "
            f"{args.seeds}: {', '.join(f'{a:.3f}' for a in aucs)}"
        )


if __name__ == "__main__":
    main()
