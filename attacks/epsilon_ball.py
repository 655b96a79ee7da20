"""Monte-Carlo epsilon-ball counting (Hilprecht et al. 2019).

Threat model: the attacker sees the released synthetic images only (plus real non-members of
the modality, used only to choose the ball's radius).
Score: the share of synthetic images within distance epsilon of the query (pixel L2; higher =
member): an estimate of the generator's probability mass near the query. Epsilon is the
median distance from the reference images to their nearest synthetic image (their median
heuristic), so a typical non-member has about one synthetic image in its ball.
"""

import numpy as np
import torch

from attacks.context import AttackContext
from attacks.controls import (
    Queries,
    Scorer,
    copies_in_synthetic,
    membership_attack,
    with_images,
)
from attacks.neighbours import CHUNK, nearest, pixels
from attacks.registry import SYNTHETIC_ONLY, AttackResult, register
from common.data import ImageSet


def ball_counts(queries: np.ndarray, synthetic: np.ndarray, radius: float) -> np.ndarray:
    synthetic_t = torch.from_numpy(synthetic)
    counts = [
        (torch.cdist(torch.from_numpy(queries[i : i + CHUNK]), synthetic_t) <= radius)
        .float()
        .mean(dim=1)
        .numpy()
        for i in range(0, len(queries), CHUNK)
    ]
    return np.concatenate(counts)


def scorer(synthetic: ImageSet, radius: float) -> Scorer:
    """Ball counts against `synthetic`; the radius stays the run's own, so planted copies
    change the counts, not the ball."""
    synthetic_pixels = pixels(synthetic.images)

    def score(queries: Queries) -> dict[str, np.ndarray]:
        return {"epsilon-ball": ball_counts(pixels(queries.data.images), synthetic_pixels, radius)}

    return score


@register(
    "mia-epsilon-ball",
    SYNTHETIC_ONLY,
    "Monte-Carlo count of synthetic images in an epsilon-ball around the query (Hilprecht et "
    "al. 2019), epsilon by the median heuristic on reference images",
    "higher score (more synthetic images nearby) = member",
)
def attack(context: AttackContext) -> AttackResult:
    synthetic = pixels(context.run.synthetic.images)
    radius = float(np.median(nearest(pixels(context.auxiliary.images), synthetic)[0][:, 0]))
    return membership_attack(
        context,
        score=scorer(context.run.synthetic, radius),
        plant=copies_in_synthetic(
            lambda added: scorer(with_images(context.run.synthetic, added), radius)
        ),
        advice=(
            "the median-heuristic ball holds about one synthetic image around a typical "
            "non-member, so one copy barely changes a count; a smaller radius, or more "
            "non-members to plant and compare"
        ),
        findings={"epsilon": radius},
    )
