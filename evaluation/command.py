"""The `privsynth evaluate` command line: options, their checks, and the printed result.

Kept free of heavy imports so that building the `privsynth` parser stays fast.
"""

import argparse
from pathlib import Path

from common.config import DEVICES
from common.errors import UserError


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a finished `privsynth run` folder")
    parser.add_argument(
        "--classifier",
        default="resnet18",
        help="architecture trained from scratch: resnet18 (default), densenet121, "
        "efficientnet_v2_s",
    )
    parser.add_argument(
        "--epochs", type=int, default=3, help="passes over the real training images (default 3)"
    )
    parser.add_argument("--seed", type=int, default=0, help="training, sampling and bootstrap")
    parser.add_argument(
        "--samples-per-class",
        metavar="N[,N...]",
        help="generate N images per class from generator.pt instead of using synthetic.npz; "
        "several values also chart TSTR AUC against N",
    )
    parser.add_argument(
        "--max-train-images",
        type=int,
        default=3000,
        help="real training images for TRTR, a random subsample above this (default 3000)",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    parser.add_argument(
        "--tstr-repeats",
        type=int,
        default=1,
        metavar="N",
        help="train TSTR on N draws in all (new synthetic set and seed each: --seed, --seed+1, "
        "...) and report their mean and spread; needs --samples-per-class (default 1)",
    )
    parser.add_argument(
        "--cache-dir",
        help="where the real-data classifier is cached (default RUN_DIR/../.cache/evaluation)",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        help="where the networks train and run (default: the run's runtime.device)",
    )


def _counts(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise UserError(
            f"--samples-per-class {text!r}: give positive whole numbers separated by commas, "
            "e.g. 50,200,1000"
        )
    return counts


def run_evaluate(args: argparse.Namespace) -> int:
    from common.device import resolve_device
    from common.run_folder import RunFolder
    from evaluation.classifiers import CLASSIFIERS
    from evaluation.evaluate import EvaluationSettings, evaluate_run
    from evaluation.training import TrainingSettings

    CLASSIFIERS.get(args.classifier)  # an unknown name fails now, before any data is read
    for flag, value in (
        ("--epochs", args.epochs),
        ("--max-train-images", args.max_train_images),
        ("--bootstrap", args.bootstrap),
        ("--tstr-repeats", args.tstr_repeats),
    ):
        if value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    # Said before any data is read; --device is what overrides the run's own setting here.
    device = resolve_device(
        args.device or RunFolder(args.run_dir).read_config().runtime.device, key="--device"
    )
    settings = EvaluationSettings(
        training=TrainingSettings(classifier=args.classifier, epochs=args.epochs, seed=args.seed),
        samples_per_class=_counts(args.samples_per_class),
        max_train_images=args.max_train_images,
        bootstrap_resamples=args.bootstrap,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        tstr_repeats=args.tstr_repeats,
    )
    result = evaluate_run(Path(args.run_dir), settings, device=device)
    macro = {
        name: result["classification"]["models"][name]["macro_auc"]["value"]
        for name in ("TSTR", "TRTR")
    }
    if None not in macro.values():
        print(
            f"macro AUC on the real holdout: TSTR {macro['TSTR']:.3f}, TRTR {macro['TRTR']:.3f} "
            f"(TSTR - TRTR {macro['TSTR'] - macro['TRTR']:+.3f})"
        )
    repeats = result["tstr_repeats"]
    if repeats:
        print(
            f"TSTR macro AUC over {len(repeats['seeds'])} draws: "
            f"{repeats['mean']:.3f} ± {repeats['sd']:.3f} (sd)"
        )
    print(f"report: {RunFolder(args.run_dir).evaluation_report}")
    return 0
