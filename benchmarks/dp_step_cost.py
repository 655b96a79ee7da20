"""Cost of one local step (DP discriminator step + 1/n generator step) vs non-private.

Per architecture and resolution, a private and a non-private trainer on the same random
images and batches (one secret seed) are warmed up, then each is timed `--repeats` times
over `--steps` discriminator steps in a row and steps/n generator steps (at least one), the
two trainers taking turns to go first; n is `training.discriminator_steps_per_generator_step`,
as in `DPGANTrainer.train`. A local step costs a D step plus 1/n of a G step. Each cell
reports the mean over repeats ± half their range. The default steps shrink with the pixel
count, so that a cell takes about as long at every resolution.

usage: .venv/bin/python benchmarks/dp_step_cost.py [--architectures dcgan,resnet]
           [--resolutions 28,32,64,128] [--steps N] [--batch 64] [--repeats 3]
           [--device cpu|cuda] [--out benchmarks/results/dp-step-cost.json]
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A sibling script: this folder is on sys.path when the script runs.
from machine import write_result  # noqa: E402

from client.training import DPGANTrainer, DPSettings  # noqa: E402
from common.config import ModelConfig, TrainingConfig  # noqa: E402
from common.data import ImageSet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "dp-step-cost.json"
RECORDS = 2000
# Discriminator steps per timing at 28 px by default; fewer at larger resolutions.
STEPS_AT_28 = 24


def default_steps(resolution: int) -> int:
    return max(1, round(STEPS_AT_28 * (28 / resolution) ** 2))


def make_trainer(
    architecture: str, resolution: int, *, private: bool, batch: int, device: torch.device
) -> DPGANTrainer:
    rng = np.random.default_rng(0)
    data = ImageSet(
        images=rng.integers(0, 256, (RECORDS, resolution, resolution), dtype=np.uint8),
        labels=np.eye(2, dtype=np.float32)[rng.integers(0, 2, RECORDS)],
        class_names=("a", "b"),
        multi_label=False,
    )
    return DPGANTrainer(
        data,
        np.arange(RECORDS).astype(str),
        ModelConfig(architecture=architecture),
        TrainingConfig(batch_size=batch),
        DPSettings(1.0 if private else 0.0, 1.0, batch / RECORDS),
        device,
        secret_seed=0,
    )


def seconds(run, calls: int, device: torch.device) -> float:
    """Mean wall time of `calls` calls of `run` in a row, waiting for the device to finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(calls):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / calls


def local_step_seconds(trainer: DPGANTrainer, steps: int, device: torch.device) -> float:
    """The cost of a local step: a D step and 1/n of a G step."""
    every = trainer.training.discriminator_steps_per_generator_step
    d_step = seconds(trainer.discriminator_step, steps, device)
    g_step = seconds(trainer.generator_step, max(1, steps // every), device)
    return d_step + g_step / every


def measure_cell(
    architecture: str, resolution: int, *, steps: int, batch: int, repeats: int, device: str
) -> list[str | int]:
    where = torch.device(device)
    trainers = [
        make_trainer(architecture, resolution, private=private, batch=batch, device=where)
        for private in (True, False)
    ]
    for trainer in trainers:  # warm-up: first calls build kernels and allocate
        trainer.discriminator_step()
        trainer.generator_step()
    timings = np.zeros((repeats, 2))
    for repeat in range(repeats):
        # Each trainer runs its steps in a row, as in training; which goes first alternates.
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for which in order:
            timings[repeat, which] = local_step_seconds(trainers[which], steps, where)
    private, plain = timings.T
    return [
        architecture,
        resolution,
        spread(private * 1e3, digits=1),
        spread(plain * 1e3, digits=1),
        spread(private / plain, digits=2),
    ]


def spread(values: np.ndarray, *, digits: int) -> str:
    """Mean ± half the range."""
    half_range = (values.max() - values.min()) / 2
    return f"{values.mean():.{digits}f} ± {half_range:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--architectures", default="dcgan,resnet")
    parser.add_argument("--resolutions", default="28,32,64,128")
    parser.add_argument(
        "--steps",
        type=int,
        help=f"D steps per timing (default {STEPS_AT_28} at 28 px, fewer as pixels grow)",
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    columns = ["architecture", "resolution", "private ms/step", "non-private ms/step", "ratio"]
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    rows = []
    for architecture in args.architectures.split(","):
        for resolution in map(int, args.resolutions.split(",")):
            row = measure_cell(
                architecture,
                resolution,
                steps=args.steps or default_steps(resolution),
                batch=args.batch,
                repeats=args.repeats,
                device=args.device,
            )
            print("| " + " | ".join(map(str, row)) + " |", flush=True)
            rows.append(row)
    write_result(
        args.out,
        device=args.device,
        benchmark="dp-step-cost",
        title="DP discriminator step cost vs non-private",
        command=shlex.join([".venv/bin/python", "benchmarks/dp_step_cost.py", *sys.argv[1:]]),
        note=(
            f"one local step: a D step on a Poisson batch of expected size {args.batch} "
            "plus its share of a G step; one torch thread; mean over "
            f"{args.repeats} repeats ± half the range"
        ),
        target="ratio <= 1.15",
        columns=columns,
        rows=rows,
    )


if __name__ == "__main__":
    main()
