"""Cost of one local step (DP discriminator step + 1/n generator step) vs non-private.

usage: .venv/bin/python benchmarks/dp_step_cost.py [--resolutions 28,32,64] [--steps 20]
"""

import argparse
import time

import numpy as np
import torch

from client.training import DPGANTrainer, DPSettings
from common.config import ModelConfig, TrainingConfig
from common.data import ImageSet


def time_steps(resolution: int, private: bool, steps: int, batch: int) -> float:
    n = 2000
    rng = np.random.default_rng(0)
    data = ImageSet(
        images=rng.integers(0, 256, (n, resolution, resolution), dtype=np.uint8),
        labels=np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)],
        class_names=("a", "b"),
        multi_label=False,
    )
    trainer = DPGANTrainer(
        data,
        np.arange(n).astype(str),
        ModelConfig(),
        TrainingConfig(batch_size=batch),
        DPSettings(1.0 if private else 0.0, 1.0, batch / n),
        torch.device("cpu"),
    )
    trainer.train(4)  # warm-up
    started = time.perf_counter()
    trainer.train(steps)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resolutions", default="28,32,64")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| resolution | private ms/step | non-private ms/step | ratio |")
    print("|---|---|---|---|")
    for resolution in map(int, args.resolutions.split(",")):
        private = time_steps(resolution, True, args.steps, args.batch)
        plain = time_steps(resolution, False, args.steps, args.batch)
        print(f"| {resolution} | {private * 1e3:.0f} | {plain * 1e3:.0f} | {private / plain:.2f} |")


if __name__ == "__main__":
    main()
