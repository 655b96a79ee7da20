"""The report's figures: samples next to real images, ROC curves, PRDC bars, the
samples-per-class curve."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

MODEL_STYLES = {"TRTR": "-", "TSTR": "--", "TRTR + synthetic": ":"}


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sample_comparison(rows: list[tuple[str, np.ndarray, np.ndarray]], path: Path) -> None:
    """One row per class: synthetic images on the left, real holdout images on the right."""
    columns = max(max(len(s), len(r)) for _, s, r in rows)
    fig, axes = plt.subplots(
        len(rows),
        2 * columns + 1,
        figsize=((2 * columns + 1) * 0.8 + 1.4, len(rows) * 0.85 + 0.7),
        squeeze=False,
    )
    for r, (name, synthetic, real) in enumerate(rows):
        cells = [*synthetic, *[None] * (columns - len(synthetic)), None, *real]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(cells) and cells[c] is not None:
                ax.imshow(cells[c], cmap="gray", vmin=0, vmax=255)
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    axes[0][columns // 2].set_title("synthetic", fontsize=10)
    axes[0][columns + 1 + columns // 2].set_title("real (holdout)", fontsize=10)
    _save(fig, path)


def roc_curves(
    labels: np.ndarray,
    scores_by_model: dict[str, np.ndarray],
    class_names: tuple[str, ...],
    path: Path,
) -> None:
    """One panel per class (one-vs-rest) or finding, one curve per model."""
    fig, axes = plt.subplots(
        1, len(class_names), figsize=(3.3 * len(class_names), 3.4), squeeze=False
    )
    for k, (ax, name) in enumerate(zip(axes[0], class_names)):
        positives = labels[:, k] > 0.5
        if positives.all() or not positives.any():
            ax.set_title(f"{name}: one label value only", fontsize=9)
            continue
        for model, scores in scores_by_model.items():
            fpr, tpr, _ = roc_curve(positives, scores[:, k])
            ax.plot(fpr, tpr, MODEL_STYLES.get(model, "-"), label=model)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.6)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=name)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def prdc_bars(rows: dict[str, dict], path: Path) -> None:
    """Precision, recall, density, coverage per class (and overall), grouped bars."""
    metrics = ("precision", "recall", "density", "coverage")
    names = list(rows)
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2.5, 3.4))
    width = 0.8 / len(metrics)
    for m, metric in enumerate(metrics):
        values = [rows[n].get(metric) for n in names]
        values = [np.nan if v is None else v for v in values]
        ax.bar(np.arange(len(names)) + (m - 1.5) * width, values, width, label=metric)
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set_xticks(np.arange(len(names)), names, fontsize=8)
    ax.set(ylabel="value (1 = like real)", title="Synthetic vs real holdout, PRDC (k = 5)")
    ax.legend(fontsize=7, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def samples_per_class_curve(points: list[dict], reference: dict, path: Path) -> None:
    """TSTR macro AUC (95% CI) against synthetic images per class, TRTR as a band."""
    counts = [p["samples_per_class"] for p in points]
    values = np.array([p["macro_auc"]["value"] for p in points], dtype=float)
    low = np.array([p["macro_auc"]["ci95"][0] for p in points], dtype=float)
    high = np.array([p["macro_auc"]["ci95"][1] for p in points], dtype=float)
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.errorbar(
        counts, values, yerr=[values - low, high - values], marker="o", capsize=3, label="TSTR"
    )
    ax.axhline(reference["value"], color="black", linewidth=1, label="TRTR")
    ax.axhspan(*reference["ci95"], color="black", alpha=0.1)
    ax.set_xscale("log")
    ax.set(
        xlabel="synthetic images per class",
        ylabel="macro AUC on real holdout",
        title="Utility against synthetic set size",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
