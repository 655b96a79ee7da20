"""GAN-Leaks full black-box (Chen et al. 2020): members lie closer to the released images.

Threat model: the attacker sees the released synthetic images only, and a reference set of
real non-member images of the same modality (the auxiliary data).
Score: minus the pixel L2 distance from a query to its nearest synthetic image (higher =
member). Calibrated: minus (that distance - the distance to the nearest reference image), so
images that are close to everything (typical anatomy) stop looking like members.
"""

import numpy as np

from attacks.context import AttackContext
from attacks.controls import (
    Queries,
    Scorer,
    copies_in_synthetic,
    membership_attack,
    with_images,
)
from attacks.neighbours import nearest, pixels
from attacks.registry import SYNTHETIC_ONLY, AttackResult, register
from common.data import ImageSet


def scorer(context: AttackContext, synthetic: ImageSet) -> Scorer:
    """(uncalibrated, calibrated) scores of queries against `synthetic`."""
    synthetic_pixels = pixels(synthetic.images)
    reference = pixels(context.auxiliary.images)

    def score(queries: Queries) -> dict[str, np.ndarray]:
        query = pixels(queries.data.images)
        to_synthetic = nearest(query, synthetic_pixels)[0][:, 0]
        to_reference = nearest(query, reference)[0][:, 0]
        return {"nearest synthetic": -to_synthetic, "calibrated": to_reference - to_synthetic}

    return score


@register(
    "mia-distance",
    SYNTHETIC_ONLY,
    "nearest synthetic neighbour, pixel L2 (GAN-Leaks full black-box), and calibrated by the "
    "distance to a reference set of real non-members",
    "higher score (closer to a synthetic image) = member",
)
def attack(context: AttackContext) -> AttackResult:
    return membership_attack(
        context,
        score=scorer(context, context.run.synthetic),
        plant=copies_in_synthetic(
            lambda added: scorer(context, with_images(context.run.synthetic, added))
        ),
        advice=(
            "more non-member images, so that the planted copies and the non-members they are "
            "compared with are more than a handful"
        ),
    )
