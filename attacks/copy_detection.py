"""Copy detection and memorization: is any synthetic image a (partial) copy of a training image?

Threat model: anyone with the released synthetic images; the auditor compares them with the
training images.
Two detectors, each thresholded where real near-duplicates set the bar (holdout images are
real, never trained on, and their closeness to training images is what chance looks like):
- cosine similarity in the self-supervised embedding (higher = copy); copy above the 99.9th
  percentile of holdout-to-training best similarity;
- tiled pixel L2: the images are cut into a 4x4 grid of tiles and a pair's distance is the
  mean of its best quarter of tile distances (lower = copy), so a copied region is caught even
  when the rest differs; copy below the 0.1st percentile of the holdout's.
Also: distance to closest record (DCR) and nearest-neighbour distance ratio (NNDR), 5th
percentiles for synthetic vs holdout images, and authenticity (Alaa et al. 2022): the share
of synthetic images farther from their nearest training image than that image is from its own
nearest training neighbour.
Positive control: near-copies of training images (pixel noise, a brightness shift), which the
detectors must flag as copies.
"""

import numpy as np
import torch
from scipy.stats import binomtest

from attacks.context import AttackContext
from attacks.controls import DETECTION_FLOOR, near_copies, power
from attacks.neighbours import CHUNK, most_similar, nearest, pixels
from attacks.plots import plot_pairs
from attacks.registry import SYNTHETIC_ONLY, AttackResult, register

GRID = 4
COPY_QUANTILE = 0.999
GALLERY_PAIRS = 10
SIGNIFICANCE = 0.01
PLANTED_COPIES = 100


def tiles(images: np.ndarray) -> torch.Tensor:
    """(N, GRID*GRID, tile pixels) in [0, 1]; the image is cropped to a multiple of GRID."""
    n, size, _ = images.shape
    side = size // GRID
    cropped = torch.from_numpy(images[:, : side * GRID, : side * GRID]).float() / 255.0
    blocks = cropped.view(n, GRID, side, GRID, side).permute(0, 1, 3, 2, 4)
    return blocks.reshape(n, GRID * GRID, side * side)


def tiled_distance(queries: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each query's nearest gallery image by tiled L2."""
    query_tiles, gallery_tiles = tiles(queries), tiles(gallery)
    keep = max(1, GRID * GRID // 4)
    scale = query_tiles.shape[2] ** 0.5  # per-pixel RMS, independent of the tile size
    best, index = [], []
    step = max(1, CHUNK // 16)
    for start in range(0, len(queries), step):
        chunk = query_tiles[start : start + step]
        per_tile = torch.stack(
            [torch.cdist(chunk[:, t], gallery_tiles[:, t]) for t in range(GRID * GRID)], dim=2
        )
        pair = per_tile.topk(keep, dim=2, largest=False).values.mean(dim=2) / scale
        values, where = pair.min(dim=1)
        best.append(values.numpy())
        index.append(where.numpy())
    return np.concatenate(best), np.concatenate(index)


def _copies(hits: np.ndarray, expected: float) -> dict:
    return {
        "copy_rate": float(hits.mean()),
        "expected_by_chance": expected,
        "p_value": float(binomtest(int(hits.sum()), len(hits), expected, "greater").pvalue),
    }


def planted_power(
    context: AttackContext, *, similarity_bar: float, tiled_bar: float, holdout_count: int
) -> dict:
    """The positive control: the share of near-copies of training images, as if planted in
    the synthetic set, that either detector flags at its threshold."""
    training = context.run.members
    rng = np.random.default_rng(context.options.seed)
    chosen = rng.choice(len(training), min(len(training), PLANTED_COPIES), replace=False)
    copies = near_copies(training.images[chosen], rng)
    similarity = most_similar(context.embed(copies), context.embedding("training"))[0][:, 0]
    found = (similarity > similarity_bar) | (tiled_distance(copies, training.images)[0] < tiled_bar)
    return power(
        control=(
            f"{len(copies)} near-copies of training images (pixel noise, brightness shift) "
            "planted in the synthetic set: share detected"
        ),
        value=float(found.mean()),
        floor=DETECTION_FLOOR,
        count=len(copies),
        advice=(
            f"more holdout images (the thresholds sit at the {COPY_QUANTILE:.1%} quantile of "
            f"{holdout_count} holdout images) or a longer embedding schedule (embedding_steps, "
            f"now {context.options.embedding_steps})"
        ),
    )


@register(
    "copy-detection",
    SYNTHETIC_ONLY,
    "nearest training image of each synthetic image by embedding cosine similarity and by "
    "tiled pixel L2; DCR, NNDR and authenticity against the holdout baseline",
    "higher similarity / lower distance = copy",
)
def attack(context: AttackContext) -> AttackResult:
    run = context.run
    training, synthetic, holdout = run.members, run.synthetic, context.nonmembers
    # A new image beats the most extreme of n exchangeable holdout images with chance
    # 1 / (n + 1): with fewer than 1000 holdout images that, not 0.1%, is the chance rate.
    expected = max(1 - COPY_QUANTILE, 1 / (len(holdout) + 1))

    training_embedding = context.embedding("training")
    synthetic_similarity, synthetic_nearest = most_similar(
        context.embedding("synthetic"), training_embedding
    )
    holdout_similarity = most_similar(context.embedding("nonmembers"), training_embedding)[0]
    similarity_bar = float(np.quantile(holdout_similarity[:, 0], COPY_QUANTILE))
    embedding_hits = synthetic_similarity[:, 0] > similarity_bar
    copied = np.unique(synthetic_nearest[embedding_hits, 0])

    synthetic_tiled, synthetic_tiled_nearest = tiled_distance(synthetic.images, training.images)
    holdout_tiled = tiled_distance(holdout.images, training.images)[0]
    tiled_bar = float(np.quantile(holdout_tiled, 1 - COPY_QUANTILE))
    tiled_hits = synthetic_tiled < tiled_bar
    copied = np.union1d(copied, synthetic_tiled_nearest[tiled_hits])

    training_pixels = pixels(training.images)
    synthetic_dcr = nearest(pixels(synthetic.images), training_pixels, k=2)[0]
    holdout_dcr = nearest(pixels(holdout.images), training_pixels, k=2)[0]

    # Authenticity: training images' own nearest-neighbour distance in the embedding.
    own = most_similar(training_embedding, training_embedding, k=2)[0][:, 1]

    def authentic(similarity: np.ndarray, index: np.ndarray) -> float:
        return float((similarity[:, 0] < own[index[:, 0]]).mean())

    holdout_nearest = most_similar(context.embedding("nonmembers"), training_embedding)

    order = np.argsort(-synthetic_similarity[:, 0])[:GALLERY_PAIRS]
    gallery = context.figures_dir / "closest-copies.png"
    plot_pairs(
        synthetic.images[order],
        training.images[synthetic_nearest[order, 0]],
        [f"cos {synthetic_similarity[i, 0]:.3f}" for i in order],
        ("synthetic", "nearest training"),
        gallery,
    )
    embedding = _copies(embedding_hits, expected)
    tiled = _copies(tiled_hits, expected)
    any_copy = embedding_hits | tiled_hits
    findings = {
        "embedding": {**embedding, "threshold_similarity": similarity_bar},
        "tiled_l2": {**tiled, "threshold_distance": tiled_bar},
        "copy_rate_any": float(any_copy.mean()),
        "training_images_copied_share": float(len(copied) / len(training)),
        "threshold_resolved": bool(len(holdout) * (1 - COPY_QUANTILE) >= 1),
        "dcr_p5": {
            "synthetic": float(np.percentile(synthetic_dcr[:, 0], 5)),
            "holdout": float(np.percentile(holdout_dcr[:, 0], 5)),
        },
        "nndr_p5": {
            "synthetic": float(np.percentile(synthetic_dcr[:, 0] / synthetic_dcr[:, 1], 5)),
            "holdout": float(np.percentile(holdout_dcr[:, 0] / holdout_dcr[:, 1], 5)),
        },
        "authenticity": {
            "synthetic": authentic(synthetic_similarity, synthetic_nearest),
            "holdout": authentic(*holdout_nearest),
        },
    }
    leaked = min(embedding["p_value"], tiled["p_value"]) < SIGNIFICANCE
    return AttackResult(
        findings=findings,
        leaked=bool(leaked),
        power=planted_power(
            context, similarity_bar=similarity_bar, tiled_bar=tiled_bar, holdout_count=len(holdout)
        ),
        figures=[str(gallery.relative_to(run.run_dir))],
        summary=(
            f"copy rate {embedding['copy_rate']:.2%} (embedding) and {tiled['copy_rate']:.2%} "
            f"(tiled L2) vs {expected:.2%} by chance; {len(copied) / len(training):.2%} of "
            f"training images copied at least once; DCR p5 "
            f"{findings['dcr_p5']['synthetic']:.3f} (holdout {findings['dcr_p5']['holdout']:.3f})"
        ),
    )
