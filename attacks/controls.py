"""Controls that say whether an attack's verdict can mean anything.

Positive control (power): the attack runs where the answer is known and must find what was
planted for it: copies of real images in what it attacks (membership attacks), near-copies of
training images (copy detection), two images of one patient (linkage). Below its floor the
attacker is too weak on this data, and its silence is no evidence of privacy.

Negative control: a membership attack with its members replaced by real images of the
training population that no site trained on (the context's control population: the sites'
untrained share; else half of the non-members, scored against the other half). Above chance,
the attack tells populations apart rather than members from non-members, and its signal may be
a difference between the training population and the holdout's. With a control of the training
population the members are also scored against it: at chance there, the members do not stand
out from their own population, whatever the attack tells against the holdout.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sklearn.metrics import roc_auc_score

from attacks.context import AttackContext, split_by_patient
from attacks.registry import AttackResult
from common.data import ImageSet

# At 0.9 (AUC on planted copies, share of planted near-copies found, verification AUC on
# real pairs) an attack flags most of what a memorizing generator would release.
PLANTED_AUC_FLOOR = 0.9
DETECTION_FLOOR = 0.9
VERIFICATION_AUC_FLOOR = 0.9
# With fewer planted cases (or verification patients) a control's number is noise.
MIN_CONTROL_COUNT = 10
# Near-copies: pixel noise and a brightness shift, as fractions of the pixel range.
NEAR_COPY_NOISE = 0.01
NEAR_COPY_BRIGHTNESS = 0.01

HALVES = (
    "half of the non-members in place of the members, scored against the other half (the run "
    "kept no untrained images of the training population, so this checks the attack's null but "
    "cannot see a difference between the training population and the holdout's)"
)


def power(*, control: str, value: float, floor: float, count: int, advice: str) -> dict:
    """A positive control's entry: adequate when `value` reaches `floor` over at least
    MIN_CONTROL_COUNT planted cases; advice: what would make the attacker stronger."""
    return {
        "control": control,
        "value": float(value),
        "floor": floor,
        "count": int(count),
        "min_count": MIN_CONTROL_COUNT,
        "adequate": bool(count >= MIN_CONTROL_COUNT and value >= floor),
        "advice": advice,
    }


def near_copies(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lightly perturbed copies of uint8 images: a memorized image as a generator renders it."""
    values = images.astype(np.float32) / 255.0
    shift = rng.uniform(-NEAR_COPY_BRIGHTNESS, NEAR_COPY_BRIGHTNESS, (len(images), 1, 1))
    noisy = values + shift + rng.normal(0.0, NEAR_COPY_NOISE, values.shape)
    return (np.clip(noisy, 0.0, 1.0) * 255.0).round().astype(np.uint8)


@dataclass(frozen=True)
class Queries:
    """Images an attack scores, each with the site whose model would have trained on it."""

    data: ImageSet
    sites: np.ndarray

    def __len__(self) -> int:
        return len(self.data)

    def subset(self, indices: np.ndarray) -> "Queries":
        return Queries(self.data.subset(indices), self.sites[indices])


# Score name -> one score per query, higher = member.
Scorer = Callable[[Queries], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Planted:
    """The positive control's members: `queries`, which the target of `scorer` holds."""

    queries: Queries
    scorer: Scorer
    description: str


class Scored(NamedTuple):
    queries: Queries
    scores: dict[str, np.ndarray]

    def subset(self, indices: np.ndarray) -> "Scored":
        return Scored(self.queries.subset(indices), {k: v[indices] for k, v in self.scores.items()})


def with_images(base: ImageSet, added: ImageSet) -> ImageSet:
    """`base` with `added`'s images and labels appended (a synthetic set with planted copies)."""
    return ImageSet(
        np.concatenate([base.images, added.images]),
        np.concatenate([base.labels, added.labels]),
        base.class_names,
        base.multi_label,
    )


def copies_in_synthetic(scorer_with: Callable[[ImageSet], Scorer]) -> Callable[[Queries], Planted]:
    """The planting of attacks on the synthetic set; `scorer_with(added)` scores against the
    synthetic set with the images `added` appended."""

    def plant(queries: Queries) -> Planted:
        description = "exact copies added to the synthetic set"
        return Planted(queries, scorer_with(queries.data), description)

    return plant


def membership_attack(
    context: AttackContext,
    *,
    score: Scorer,
    plant: Callable[[Queries], Planted],
    advice: str,
    findings: dict | None = None,
    cap: int = 0,
) -> AttackResult:
    """Members against non-members, and both controls, all with the same scores.

    plant: given real images no site trained on (half of the non-members), the target made to
    hold them; the planted images must then score above the other half. cap: the most queries
    per side (0 = all), for costly scores.
    """
    rng = np.random.default_rng(context.options.seed)
    nonmember_sites = _random_sites(context, len(context.nonmembers), rng)
    members = _capped(Queries(context.members, context.member_sites), cap, rng)
    nonmembers = _capped(Queries(context.nonmembers, nonmember_sites), cap, rng)
    members_scored = Scored(members, score(members))
    nonmembers_scored = Scored(nonmembers, score(nonmembers))
    halves = split_by_patient(nonmembers.data, rng)
    return AttackResult(
        findings=findings or {},
        membership=_metrics(context, members_scored, nonmembers_scored),
        negative_control=_negative_control(
            context, score, members_scored, nonmembers_scored, halves=halves, cap=cap, rng=rng
        ),
        power=_planted_power(score, plant, nonmembers_scored, halves=halves, advice=advice),
    )


def _random_sites(context: AttackContext, count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, context.run.config.federation.num_sites, count)


def _capped(queries: Queries, cap: int, rng: np.random.Generator) -> Queries:
    if not cap or len(queries) <= cap:
        return queries
    return queries.subset(np.sort(rng.choice(len(queries), cap, replace=False)))


def _metrics(context: AttackContext, positive: Scored, negative: Scored) -> dict[str, dict]:
    return {
        name: context.membership_metrics(
            positive.scores[name],
            negative.scores[name],
            members=positive.queries.data,
            nonmembers=negative.queries.data,
        )
        for name in positive.scores
    }


def _negative_control(
    context: AttackContext,
    score: Scorer,
    members: Scored,
    nonmembers: Scored,
    *,
    halves: tuple[np.ndarray, np.ndarray],
    cap: int,
    rng: np.random.Generator,
) -> dict:
    if context.control is not None:
        sites = context.control_sites
        if sites is None:
            sites = _random_sites(context, len(context.control), rng)
        control = _capped(Queries(context.control, sites), cap, rng)
        control_scored = Scored(control, score(control))
        return {
            "control": f"{context.control_source}, in place of the members",
            "training_population": True,
            "membership": _metrics(context, control_scored, nonmembers),
            # The members against non-members of their own population: what membership
            # alone, without a difference between populations, lets the attack tell.
            "members_against_control": _metrics(context, members, control_scored),
        }
    first, second = halves
    if not len(first) or not len(second):
        return {
            "control": "none: the non-members are one patient",
            "training_population": False,
            "membership": {},
        }
    membership = _metrics(context, nonmembers.subset(first), nonmembers.subset(second))
    return {"control": HALVES, "training_population": False, "membership": membership}


def _planted_power(
    score: Scorer,
    plant: Callable[[Queries], Planted],
    nonmembers: Scored,
    *,
    halves: tuple[np.ndarray, np.ndarray],
    advice: str,
) -> dict:
    first, second = halves
    if not len(first) or not len(second):
        return power(
            control="planted copies: none, the non-members are one patient",
            value=float("nan"),
            floor=PLANTED_AUC_FLOOR,
            count=0,
            advice="more non-member patients",
        )
    planted = plant(nonmembers.queries.subset(first))
    others = nonmembers.subset(second)
    # An unchanged target (a generator holds its own outputs already): the scores stand.
    baseline = others.scores if planted.scorer is score else planted.scorer(others.queries)
    planted_scores = planted.scorer(planted.queries)
    by_score = {name: _auc(planted_scores[name], baseline[name]) for name in planted_scores}
    best = max(by_score, key=by_score.get)
    control = (
        f"{len(planted.queries)} non-member images planted ({planted.description}), AUC "
        f"against {len(others.queries)} other non-members (best score: {best})"
    )
    return {
        **power(
            control=control,
            value=by_score[best],
            floor=PLANTED_AUC_FLOOR,
            count=len(planted.queries),
            advice=advice,
        ),
        "by_score": by_score,
    }


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    truth = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    return float(roc_auc_score(truth, np.r_[positive, negative]))
