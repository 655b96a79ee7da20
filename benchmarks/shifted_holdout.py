"""Copies of a finished MedMNIST run whose holdout is another population: the holdout split's
films made some grey levels brighter or darker (as another scanner's), the training split
untouched, so the sites' data, the generator and the synthetic set stay those of the run.

usage: .venv/bin/python benchmarks/shifted_holdout.py RUN_DIR OUT_DIR --brightness LEVELS

Writes OUT_DIR/holdout-shifted.npz (the run's .npz with its holdout split shifted) and two run
folders pointing to it: OUT_DIR/run, and OUT_DIR/run-without-untrained, whose split drops the
sites' untrained share as a run planned before sites kept one records it (its attacks have
only halves of the holdout as their negative control). Being siblings, the two share the
attacks' cache of trained embeddings.
"""

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.run_folder import RunFolder  # noqa: E402

# What a copy leaves out: what the attacks and the training's resumption wrote.
LEFT_OUT = ("attacks.*", "attack-figures", "logs", "checkpoint.pt")


def shifted_npz(source: Path, split: str, levels: int, out: Path) -> Path:
    with np.load(source, allow_pickle=False) as arrays:
        shifted = {key: arrays[key] for key in arrays.files}
    images = shifted[f"{split}_images"].astype(np.int64) + levels
    shifted[f"{split}_images"] = np.clip(images, 0, 255).astype(np.uint8)
    np.savez(out, **shifted)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--brightness", type=int, required=True, help="grey levels added")
    args = parser.parse_args()
    source = RunFolder(args.run_dir)
    config = source.read_config()
    if config.data.source != "medmnist" or not config.data.holdout_split:
        raise SystemExit("the run must hold out a split of a MedMNIST .npz (data.holdout_split)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    npz = shifted_npz(
        Path(config.data.options.path),
        config.data.holdout_split,
        args.brightness,
        args.out_dir / "holdout-shifted.npz",
    )
    options = dataclasses.replace(config.data.options, path=str(npz.resolve()))
    shifted = dataclasses.replace(config, data=dataclasses.replace(config.data, options=options))
    for name, keeps_untrained in (("run", True), ("run-without-untrained", False)):
        copy = RunFolder(args.out_dir / name)
        shutil.copytree(source.path, copy.path, ignore=shutil.ignore_patterns(*LEFT_OUT))
        copy.write_config(shifted)
        if not keeps_untrained:
            split = copy.read_split()
            del split["untrained"]
            copy.write_split(split)
        print(copy.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
