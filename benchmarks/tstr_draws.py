"""How much of a run's TSTR AUC is the evaluation's own draw?

`privsynth evaluate --samples-per-class N --seed S` draws one synthetic set from the run's
generator.pt and trains one TSTR classifier, both from seed S. This script repeats exactly
that for several seeds on an already evaluated run, without the rest of the evaluation
(`privsynth evaluate --tstr-repeats K` does the same within a full evaluation). The spread it
prints is the measurement noise of one evaluation, apart from the seed-to-seed spread of
training. Rows are appended to runs/tstr_draws.jsonl.

usage: python benchmarks/tstr_draws.py RUN_DIR [RUN_DIR ...] --seeds 0 1 2
       [--samples-per-class 1000]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.run_data import load_run  # noqa: E402
from evaluation.evaluate import EvaluationSettings  # noqa: E402
from evaluation.repeats import tstr_draw  # noqa: E402
from evaluation.training import steps_per_epoch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples-per-class", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("runs/tstr_draws.jsonl"))
    args = parser.parse_args()
    settings = EvaluationSettings()
    for run_dir in args.run_dirs:
        run = load_run(run_dir)
        # The evaluation's epoch length: TRTR's real images, at most max_train_images.
        real_count = min(len(run.members), settings.max_train_images)
        epoch_steps = steps_per_epoch(real_count, settings.training.batch_size)
        aucs = []
        for seed in args.seeds:
            auc = tstr_draw(run, settings.training, epoch_steps, args.samples_per_class, seed)
            aucs.append(auc)
            with open(args.out, "a") as log:
                log.write(json.dumps({"run": str(run_dir), "seed": seed, "tstr_auc": auc}) + "\n")
        print(
            f"{run_dir}: TSTR {np.mean(aucs):.3f} ± {np.std(aucs, ddof=1):.3f} over seeds "
            f"{args.seeds}: {', '.join(f'{a:.3f}' for a in aucs)}"
        )


if __name__ == "__main__":
    main()
