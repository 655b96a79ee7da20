"""The realism detector's figure: the synthetic images it finds most and least real, beside
random real images."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def realism_examples(
    path: Path,
    *,
    synthetic: np.ndarray,
    most_real: np.ndarray,
    least_real: np.ndarray,
    real: np.ndarray,
    seed: int,
    auc: float | None = None,
    columns: int = 8,
) -> None:
    """Save a PNG with three rows: the synthetic images at indices most_real (most real first),
    those at least_real (least real first), and `columns` real images drawn at random (seeded).

    synthetic, real: uint8 (N, R, R); most_real, least_real: indices into synthetic, as in
    evaluation.realism.RealismResult. auc, if given, goes into the title.
    """
    most_real = np.asarray(most_real, dtype=np.int64)[:columns]
    least_real = np.asarray(least_real, dtype=np.int64)[:columns]
    picks = np.random.default_rng(seed).choice(
        len(real), size=min(columns, len(real)), replace=False
    )
    rows = [
        ("synthetic:\nmost real", synthetic[most_real]),
        ("synthetic:\nleast real", synthetic[least_real]),
        ("real\n(random)", real[np.sort(picks)]),
    ]
    width = max(columns, 1)
    fig, axes = plt.subplots(
        len(rows), width, figsize=(width * 0.9 + 1.4, len(rows) * 0.95 + 0.7), squeeze=False
    )
    for r, (name, images) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    title = "Realism detector: synthetic images it finds most / least real"
    if auc is not None:
        title += f" (held-out AUC {auc:.3f}; 0.5 = indistinguishable)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
