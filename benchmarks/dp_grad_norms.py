"""Per-sample gradient norms of the DP discriminator during training, against the clip norm.

Trains one site's share of a run's images (`dpgan_screen.one_site_trainer`) and, at a few steps,
prints the median and 90th percentile of the per-sample gradient norms of the real and the
generated rows before clipping. When nearly all rows exceed `privacy.max_grad_norm`, every
row is clipped, and a smaller clip norm would scale signal and noise alike (Adam is
scale-invariant): the clip norm is then not a lever.

usage: python benchmarks/dp_grad_norms.py RUN_DIR [--epsilon 10] [--steps 2000]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A sibling script: this folder is on sys.path when the script runs.
from dpgan_screen import one_site_trainer  # noqa: E402

from common.run_data import load_run  # noqa: E402

REPORT_AT = (1, 10, 100, 500, 1000, 2000, 4000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    run = load_run(args.run_dir)
    config = run.config
    clip = config.privacy.max_grad_norm
    trainer, _, sigma = one_site_trainer(run, config, args.epsilon, args.steps, args.seed)
    print(f"clip norm {clip}, noise multiplier {sigma:.3f}")
    print("| step | real median | real p90 | generated median | generated p90 | rows clipped |")
    print("|---|---|---|---|---|---|")
    for step in range(1, args.steps + 1):
        trainer.train(1)
        if step in REPORT_AT:
            batch = trainer.clipping.per_sample_norms  # this step's rows, before clipping
            generated = config.training.batch_size  # the last rows; real rows vary (Poisson)
            real, fake = batch[:-generated], batch[-generated:]
            print(
                f"| {step} | {real.median():.2f} | {real.quantile(0.9):.2f} | {fake.median():.2f}"
                f" | {fake.quantile(0.9):.2f} | {(batch > clip).float().mean():.0%} |"
            )


if __name__ == "__main__":
    main()
