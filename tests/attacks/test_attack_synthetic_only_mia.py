"""Membership attacks that see only the synthetic images: planted copies vs independent draws."""

import pytest

from attacks.registry import ATTACKS
from attacks.report import membership_level
from attacks.suite import run_attacks  # noqa: F401  (registers every attack)

SYNTHETIC_ONLY_MIAS = ["mia-distance", "mia-epsilon-ball", "mia-domias"]


@pytest.mark.parametrize("name", SYNTHETIC_ONLY_MIAS)
def test_copies_of_the_training_images_are_flagged_by_every_score(planted, name):
    context = planted("copies")

    result = ATTACKS.get(name).run(context)

    for score, metrics in result.membership.items():
        assert metrics["auc"] > 0.8, score
        assert membership_level(metrics) == "strong", score


@pytest.mark.parametrize("name", SYNTHETIC_ONLY_MIAS)
def test_independent_draws_leave_every_score_near_chance(planted, name):
    context = planted("independent")

    result = ATTACKS.get(name).run(context)

    for score, metrics in result.membership.items():
        assert 0.3 < metrics["auc"] < 0.7, score
        assert metrics["members"] == metrics["nonmembers"] == len(context.members)
