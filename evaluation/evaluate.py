"""`privsynth evaluate RUN_DIR`: utility, distribution metrics, label fidelity and realism (a
detector of synthetic against real images) of a run's synthetic images against the real
holdout, written to evaluation.json, evaluation.md and figures in the run folder."""

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.conditions import condition_groups
from common.data import ImageSet
from common.errors import UserError
from common.run_data import RunData, load_run
from common.run_folder import RunFolder
from evaluation import figures
from evaluation.bootstrap import classification_results
from evaluation.classifiers import Classifier
from evaluation.distribution import distribution_metrics, distribution_results
from evaluation.metrics.label_fidelity import label_fidelity
from evaluation.real_classifier import real_classifier
from evaluation.realism import RealismResult, detect, real_vs_real
from evaluation.realism_figure import realism_examples
from evaluation.repeats import tstr_repeats
from evaluation.report import report_markdown
from evaluation.synthetic import first_per_class, generate_per_class
from evaluation.training import (
    TrainingSettings,
    scores_and_features,
    steps_per_epoch,
    train_classifier,
)

FEATURE_SPACE = (
    "penultimate layer (global average pool) of the TRTR classifier: the project's own {arch}, "
    "trained from scratch on the run's real training images; not Inception-v3, so Fréchet "
    "distances here are not comparable with published FID values"
)
GRID_COLUMNS = 8


@dataclass(frozen=True)
class EvaluationSettings:
    training: TrainingSettings = field(default_factory=TrainingSettings)
    # Empty: evaluate the run's synthetic.npz. Otherwise generate max(N) per class from
    # generator.pt and also train a TSTR classifier on the first N per class for each N.
    samples_per_class: tuple[int, ...] = ()
    max_train_images: int = 3000
    bootstrap_resamples: int = 1000
    cache_dir: Path | None = None
    # More than 1: also train TSTR on this many draws in all (new synthetic set and seed each).
    tstr_repeats: int = 1


def _subsample(data: ImageSet, limit: int, seed: int) -> ImageSet:
    if len(data) <= limit:
        return data
    rows = np.random.default_rng(seed).choice(len(data), size=limit, replace=False)
    return data.subset(np.sort(rows))


def _concat(a: ImageSet, b: ImageSet) -> ImageSet:
    return ImageSet(
        np.concatenate([a.images, b.images]),
        np.concatenate([a.labels, b.labels]),
        a.class_names,
        a.multi_label,
    )


def _synthetic_set(
    run: RunData, settings: EvaluationSettings, device: torch.device
) -> tuple[ImageSet, str]:
    folder = RunFolder(run.run_dir)
    if not settings.samples_per_class:
        return run.synthetic, f"the run's exported {folder.synthetic_file.name}"
    largest = max(settings.samples_per_class)
    seed = settings.training.seed
    return (
        generate_per_class(run.run_dir, largest, seed, device=device),
        f"{largest} images per class generated from the run's {folder.generator_file.name} "
        f"(seed {seed})",
    )


def _check_compatible(synthetic: ImageSet, holdout: ImageSet, folder: RunFolder) -> None:
    if len(synthetic) == 0:
        raise UserError(f"{folder.synthetic_file} holds no images; use --samples-per-class N")
    if synthetic.resolution != holdout.resolution or synthetic.class_names != holdout.class_names:
        raise UserError(
            f"the synthetic images of {folder.path} ({synthetic.resolution} px, classes "
            f"{list(synthetic.class_names)}) do not match its data ({holdout.resolution} px, "
            f"classes {list(holdout.class_names)}); was {folder.synthetic_file.name} or "
            f"{folder.generator_file.name} replaced?"
        )


def _sample_rows(
    synthetic: ImageSet, holdout: ImageSet
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    real = dict(condition_groups(holdout.labels, holdout.class_names, holdout.multi_label))
    return [
        (name, synthetic.images[rows[:GRID_COLUMNS]], holdout.images[real[name][:GRID_COLUMNS]])
        for name, rows in condition_groups(
            synthetic.labels, synthetic.class_names, synthetic.multi_label
        )
    ]


def _train_classifiers(
    real_train: ImageSet,
    synthetic: ImageSet,
    settings: EvaluationSettings,
    steps: int,
    device: torch.device,
) -> dict[str, Classifier]:
    """TSTR, augmentation, and one TSTR per smaller samples-per-class count; same schedule."""
    training, multi_label = settings.training, synthetic.multi_label
    sets = {"TSTR": synthetic, "TRTR + synthetic": _concat(real_train, synthetic)}
    largest = max(settings.samples_per_class, default=0)
    for count in sorted(set(settings.samples_per_class) - {largest}):
        sets[f"TSTR {count}/class"] = first_per_class(synthetic, count)
    return {
        name: train_classifier(
            data.images, data.labels, multi_label, training, steps, name, device=device
        )
        for name, data in sets.items()
    }


def _curve(settings: EvaluationSettings, classification: dict) -> list[dict]:
    largest = max(settings.samples_per_class, default=0)
    return [
        {
            "samples_per_class": count,
            "macro_auc": classification["models"][
                "TSTR" if count == largest else f"TSTR {count}/class"
            ]["macro_auc"],
        }
        for count in sorted(set(settings.samples_per_class))
    ]


def _distribution(
    holdout: ImageSet,
    holdout_features: np.ndarray,
    synthetic: ImageSet,
    synthetic_features: np.ndarray,
    reference_features: np.ndarray,
    classifier: str,
) -> dict:
    result = distribution_results(
        holdout_features,
        holdout.labels,
        synthetic_features,
        synthetic.labels,
        holdout.class_names,
        holdout.multi_label,
    )
    result["real_reference"] = distribution_metrics(holdout_features, reference_features)
    result["feature_space"] = FEATURE_SPACE.format(arch=classifier)
    return result


def _write_figures(
    folder: RunFolder,
    synthetic: ImageSet,
    holdout: ImageSet,
    scores: dict[str, np.ndarray],
    classification: dict,
    distribution: dict,
    curve: list[dict],
    detector: RealismResult,
    seed: int,
) -> dict[str, str]:
    names = ["samples", "roc", "prdc", "realism"] + (
        ["samples_per_class"] if len(curve) > 1 else []
    )
    paths = {name: folder.evaluation_figure(name.replace("_", "-")) for name in names}
    figures.sample_comparison(_sample_rows(synthetic, holdout), paths["samples"])
    figures.roc_curves(
        holdout.labels,
        {name: scores[name] for name in ("TRTR", "TSTR", "TRTR + synthetic")},
        holdout.class_names,
        paths["roc"],
    )
    figures.prdc_bars(
        {
            **distribution["per_class"],
            "all": distribution["overall"],
            "real vs real\n(reference)": distribution["real_reference"],
        },
        paths["prdc"],
    )
    realism_examples(
        paths["realism"],
        synthetic=synthetic.images,
        most_real=detector.most_real,
        least_real=detector.least_real,
        real=holdout.images,
        seed=seed,
        auc=detector.auc,
    )
    if "samples_per_class" in paths:
        figures.samples_per_class_curve(
            curve,
            classification["models"]["TRTR"]["macro_auc"],
            paths["samples_per_class"],
        )
    return {name: path.name for name, path in paths.items()}


def _realism(
    synthetic: ImageSet, holdout: ImageSet, members: ImageSet, seed: int, device: torch.device
) -> tuple[RealismResult, dict]:
    """The detector of synthetic against real holdout images, trained on the real training
    images (plenty of them) against synthetic ones it is not scored on; and the reference row:
    the same detector with a part of the training images, as many as there are synthetic
    ones, in the synthetic images' role: what indistinguishable scores."""
    tqdm.write("training the realism detectors (real vs synthetic, real vs real)")
    shared = {
        "class_names": holdout.class_names,
        "multi_label": holdout.multi_label,
        "seed": seed,
        "device": device,
    }
    detector = detect(
        real=holdout.images,
        synthetic=synthetic.images,
        real_labels=holdout.labels,
        synthetic_labels=synthetic.labels,
        training_real=members.images,
        training_real_labels=members.labels,
        **shared,
    )
    order = np.random.default_rng(seed).permutation(len(members))
    stand_in = members.subset(np.sort(order[: min(len(synthetic), len(members) // 2)]))
    training = members.subset(np.sort(order[len(stand_in) :]))
    reference = real_vs_real(
        real_a=holdout.images,
        real_b=stand_in.images,
        labels_a=holdout.labels,
        labels_b=stand_in.labels,
        training_real=training.images,
        training_real_labels=training.labels,
        **shared,
    )
    return detector, {"synthetic": detector.to_dict(), "real_reference": reference.to_dict()}


def evaluate_run(run_dir: Path, settings: EvaluationSettings, *, device: torch.device) -> dict:
    """Evaluate a finished run and write evaluation.json, evaluation.md and figures into it;
    every network it trains or runs is on `device`."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if settings.tstr_repeats > 1 and not settings.samples_per_class:
        raise UserError(
            f"--tstr-repeats draws new synthetic sets from {folder.generator_file.name}; "
            "add --samples-per-class N (e.g. 1000)"
        )
    run = load_run(run_dir)
    training = settings.training
    synthetic, synthetic_source = _synthetic_set(run, settings, device)
    holdout = run.holdout
    _check_compatible(synthetic, holdout, folder)
    class_names, multi_label = holdout.class_names, holdout.multi_label
    real_train = _subsample(run.members, settings.max_train_images, training.seed)
    steps = steps_per_epoch(len(real_train), training.batch_size)
    cache_dir = Path(settings.cache_dir or folder.cache("evaluation"))

    real_model, cache_path, cached = real_classifier(
        real_train, training, steps, cache_dir, device=device
    )
    models = _train_classifiers(real_train, synthetic, settings, steps, device)

    tqdm.write("scoring the real holdout and computing metrics")
    holdout_scores, holdout_features = scores_and_features(real_model, holdout.images, multi_label)
    synthetic_scores, synthetic_features = scores_and_features(
        real_model, synthetic.images, multi_label
    )
    # Real images as many as the synthetic ones, for the real-vs-real reference row.
    reference = _subsample(real_train, len(synthetic), training.seed + 1)
    _, reference_features = scores_and_features(real_model, reference.images, multi_label)
    scores = {"TRTR": holdout_scores}
    for name, model in models.items():
        scores[name] = scores_and_features(model, holdout.images, multi_label)[0]
    classification = classification_results(
        holdout.labels,
        scores,
        class_names,
        multi_label,
        "TRTR",
        settings.bootstrap_resamples,
        training.seed,
    )
    curve = _curve(settings, classification)
    repeats = None
    if settings.tstr_repeats > 1:
        repeats = tstr_repeats(
            classification["models"]["TSTR"]["macro_auc"]["value"],
            run,
            training,
            steps,
            max(settings.samples_per_class),
            settings.tstr_repeats,
            device=device,
        )
    distribution = _distribution(
        holdout,
        holdout_features,
        synthetic,
        synthetic_features,
        reference_features,
        training.classifier,
    )
    detector, realism = _realism(synthetic, holdout, run.members, training.seed, device)
    figure_files = _write_figures(
        folder,
        synthetic,
        holdout,
        scores,
        classification,
        distribution,
        curve,
        detector,
        training.seed,
    )

    result = {
        "run_dir": str(run_dir),
        "dataset": run.config.name,
        "data_source": run.config.data.source,
        "class_names": list(class_names),
        "multi_label": multi_label,
        "epsilon_per_site": _epsilons(folder),
        "settings": {
            **asdict(training),
            "training_steps": training.epochs * steps,
            "max_train_images": settings.max_train_images,
            "bootstrap_resamples": settings.bootstrap_resamples,
            "samples_per_class": list(settings.samples_per_class),
            "tstr_repeats": settings.tstr_repeats,
        },
        "images": {
            "real_training_available": len(run.members),
            "real_training_used": len(real_train),
            "real_holdout": len(holdout),
            "synthetic": len(synthetic),
        },
        "synthetic_source": synthetic_source,
        "real_classifier_cache": {"path": str(cache_path), "reused": cached},
        "classification": classification,
        "tstr_repeats": repeats,
        "samples_per_class_curve": curve,
        "label_fidelity": {
            "synthetic": label_fidelity(
                synthetic.labels, synthetic_scores, class_names, multi_label
            ),
            "real_holdout": label_fidelity(
                holdout.labels, holdout_scores, class_names, multi_label
            ),
        },
        "distribution": distribution,
        "realism": realism,
        "figures": figure_files,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    folder.write_evaluation(result, report_markdown(result))
    return result


def _epsilons(folder: RunFolder) -> dict[str, float | None]:
    """Epsilon spent per site from the run's summary (None for a non-private site)."""
    spent = folder.read_summary().get("epsilon_per_site", {})
    return {site: (float(e) if math.isfinite(float(e)) else None) for site, e in spent.items()}
