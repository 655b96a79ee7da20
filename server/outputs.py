"""What a finished run leaves in its folder: generator, sample grid, synthetic dataset, plots.

Everything here is computed from the aggregated generator and the sites' DP metrics, so it
is post-processing of DP outputs.
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from common.conditions import condition_rows  # noqa: E402
from common.config import Config  # noqa: E402
from common.device import CPU, module_device  # noqa: E402
from common.models import AnyGenerator, build_generator  # noqa: E402
from common.run_folder import RunFolder  # noqa: E402


def load_generator(config: Config, num_classes: int, state: dict) -> AnyGenerator:
    generator = build_generator(num_classes, config.data.resolution, config.model)
    generator.load_state_dict(state)
    return generator.eval()


@torch.no_grad()
def generate(
    generator: AnyGenerator,
    condition: np.ndarray,
    count: int,
    seed: int,
    batch: int = 256,
) -> np.ndarray:
    """uint8 images (count, R, R) for one condition, deterministic in seed, computed on the
    generator's device. The latents are drawn on the CPU whatever that device is, so a seed
    gives the same images on a GPU as on the CPU, up to floating-point noise."""
    device = module_device(generator)
    rng = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        z = torch.randn(n, generator.latent_dim, generator=rng).to(device)
        c = torch.from_numpy(np.repeat(condition[None], n, axis=0)).to(device)
        images = generator(z, c).squeeze(1)
        out.append(((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0, 0), np.uint8)


def save_grid(rows: list[tuple[str, np.ndarray]], path: Path, title: str) -> None:
    """A sample grid: one row per class, its name on the left."""
    columns = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(columns * 0.9 + 1.4, len(rows) * 0.9 + 0.6), squeeze=False
    )
    for r, (name, images) in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def export_synthetic(
    rows: list[tuple[str, np.ndarray, np.ndarray]],
    class_names: tuple[str, ...],
    multi_label: bool,
    folder: RunFolder,
) -> int:
    """The rows' images as the run's synthetic set (PNGs + labels.csv and synthetic.npz)."""
    images, conditions, names = [], [], []
    for name, condition, batch in rows:
        for image in batch:
            images.append(image)
            conditions.append(condition)
            names.append(name)
    return folder.write_synthetic(
        images=np.stack(images),
        conditions=np.stack(conditions),
        row_names=names,
        class_names=class_names,
        multi_label=multi_label,
    )


def plot_training(
    stats: list[dict], path: Path, *, loss_curves: tuple[tuple[str, str], ...]
) -> None:
    """Epsilon per site, and per round the site losses the method names in `loss_curves`."""
    fig, (ax_eps, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.6))
    sites = sorted({site for row in stats for site in row["sites"]})
    for site in sites:
        rows = [row for row in stats if site in row["sites"]]
        rounds = [row["round"] for row in rows]
        eps = [float(row["sites"][site]["epsilon"]) for row in rows]
        if all(math.isfinite(e) for e in eps):
            ax_eps.plot(rounds, eps, marker=".", label=site)
        for number, (label, key) in enumerate(loss_curves):
            # A method's release rounds report no losses.
            losses = [
                (r["round"], float(r["sites"][site][key])) for r in rows if key in r["sites"][site]
            ]
            ax_loss.plot(
                [r for r, _ in losses],
                [loss for _, loss in losses],
                linestyle="-" if number == 0 else "--",
                label=f"{site} {label}",
            )
    ax_eps.set(xlabel="round", ylabel="epsilon spent", title="Privacy spent per site")
    ax_loss.set(xlabel="round", ylabel="loss", title="Losses (on generated images)")
    for ax in (ax_eps, ax_loss):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(
    config: Config,
    run_dir: Path,
    class_names: tuple[str, ...],
    multi_label: bool,
    generator_state: dict,
    summary: dict,
    *,
    loss_curves: tuple[tuple[str, str], ...],
    device: torch.device = CPU,
) -> dict:
    """`loss_curves`: the training method's, for the training plot; `device` generates the
    synthetic set."""
    folder = RunFolder(run_dir)
    generator = load_generator(config, len(class_names), generator_state).to(device)
    folder.write_generator(
        state_dict=generator_state,
        class_names=class_names,
        multi_label=multi_label,
        resolution=config.data.resolution,
        model=config.model,
    )
    conditions = condition_rows(class_names, multi_label)
    rows = [
        (name, condition, generate(generator, condition, config.output.samples_per_class, seed=i))
        for i, (name, condition) in enumerate(conditions)
    ]
    columns = config.output.grid_columns
    eps = summary.get("epsilon_per_site", {})
    eps_text = ", ".join(f"{site} {e:.2f}" for site, e in eps.items() if math.isfinite(e))
    title = f"{config.name}: synthetic samples, one row per class" + (
        f" (epsilon {eps_text})" if eps_text else " (non-private)"
    )
    save_grid([(name, images[:columns]) for name, _, images in rows], folder.samples_image, title)
    summary["synthetic_images"] = export_synthetic(rows, class_names, multi_label, folder)
    plot_training(folder.read_stats(), folder.training_plot, loss_curves=loss_curves)
    folder.write_summary(summary)
    return summary
