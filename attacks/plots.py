"""Figures: log-log ROC curves and galleries of image pairs."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_roc(curves: dict[str, dict], title: str, path: Path) -> None:
    """Log-log ROC, one line per score; `curves` maps a name to membership_metrics."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    smallest = 1.0
    for name, metrics in curves.items():
        fpr, tpr = np.array(metrics["roc"]["fpr"]), np.array(metrics["roc"]["tpr"])
        smallest = min(smallest, 1.0 / max(1, metrics["nonmembers"]))
        ax.plot(fpr, tpr, label=f"{name} (AUC {metrics['auc']:.3f})")
    grid = np.logspace(np.log10(smallest) - 0.2, 0, 50)
    ax.plot(grid, grid, color="grey", linestyle=":", label="chance")
    ax.set(xscale="log", yscale="log", xlabel="false positive rate", ylabel="true positive rate")
    ax.set_xlim(smallest / 1.5, 1)
    ax.set_ylim(smallest / 1.5, 1.05)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pairs(
    top: np.ndarray, bottom: np.ndarray, captions: list[str], labels: tuple[str, str], path: Path
) -> None:
    """Two rows of images, column i a pair (e.g. a synthetic image over its nearest training
    image), captioned."""
    columns = max(1, len(top))
    fig, axes = plt.subplots(2, columns, figsize=(columns * 1.1 + 1.2, 2.9), squeeze=False)
    for c in range(columns):
        for r, images in enumerate((top, bottom)):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
        if c < len(captions):
            axes[0][c].set_title(captions[c], fontsize=7)
    for r, label in enumerate(labels):
        axes[r][0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
