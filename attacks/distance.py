"""GAN-Leaks full black-box (Chen et al. 2020): members lie closer to the released images.

Threat model: the attacker sees the released synthetic images only, and a reference set of
real non-member images of the same modality (the auxiliary data).
Score: minus the pixel L2 distance from a query to its nearest synthetic image (higher =
member). Calibrated: minus (that distance - the distance to the nearest reference image), so
images that are close to everything (typical anatomy) stop looking like members.
"""

from attacks.context import AttackContext
from attacks.neighbours import nearest, pixels
from attacks.registry import SYNTHETIC_ONLY, AttackResult, register


def query_scores(context: AttackContext, images) -> tuple:
    """(uncalibrated, calibrated) scores of `images`."""
    query = pixels(images)
    to_synthetic = nearest(query, pixels(context.run.synthetic.images))[0][:, 0]
    to_reference = nearest(query, pixels(context.auxiliary.images))[0][:, 0]
    return -to_synthetic, to_reference - to_synthetic


@register(
    "mia-distance",
    SYNTHETIC_ONLY,
    "nearest synthetic neighbour, pixel L2 (GAN-Leaks full black-box), and calibrated by the "
    "distance to a reference set of real non-members",
    "higher score (closer to a synthetic image) = member",
)
def attack(context: AttackContext) -> AttackResult:
    members = query_scores(context, context.members.images)
    nonmembers = query_scores(context, context.nonmembers.images)
    return AttackResult(
        membership={
            "nearest synthetic": context.membership_metrics(members[0], nonmembers[0]),
            "calibrated": context.membership_metrics(members[1], nonmembers[1]),
        }
    )
