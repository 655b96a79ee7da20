"""LOGAN white-box (Hayes et al. 2019): a site's discriminator scores its training images high.

Threat model: the attacker obtains one site's discriminator (its final local state, e.g. from
a breached site or a shared checkpoint) and knows a query image's label.
Score: the discriminator's logit on the query (higher = member). Each member is scored by its
own site's discriminator, each non-member by a randomly drawn site's. Calibrated: minus the
mean logit of the query's 5 nearest auxiliary images (self-supervised embedding) under the same
discriminator, so images the discriminator likes for their look alone stop looking like
members.
"""

from pathlib import Path

import numpy as np
import torch

from attacks.context import AttackContext
from attacks.embedding import to_tensor
from attacks.neighbours import most_similar
from attacks.registry import DISCRIMINATOR_ACCESS, AttackResult, register
from common.models import Discriminator

NEIGHBOURS = 5


def load_site_discriminator(context: AttackContext, site: int) -> Discriminator | None:
    path = Path(context.run.run_dir) / "sites" / f"site-{site}" / "training-state.pt"
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    run = context.run
    discriminator = Discriminator(
        run.members.num_classes, run.config.model.discriminator_width, run.members.resolution
    )
    discriminator.load_state_dict(state["discriminator"])
    return discriminator.eval()


@torch.no_grad()
def logits(discriminator: Discriminator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return discriminator(to_tensor(images), torch.from_numpy(labels)).numpy()


@register(
    "mia-discriminator",
    DISCRIMINATOR_ACCESS,
    "discriminator logit of the query (LOGAN white-box), and calibrated by the logits of its "
    "nearest auxiliary images",
    "higher score (discriminator calls it real) = member",
)
def attack(context: AttackContext) -> AttackResult:
    sites = range(context.run.config.federation.num_sites)
    discriminators = {site: load_site_discriminator(context, site) for site in sites}
    missing = [f"site-{site}" for site, model in discriminators.items() if model is None]
    if missing:
        return AttackResult(
            skipped=f"no discriminator state (training-state.pt) for {', '.join(missing)}"
        )
    rng = np.random.default_rng(context.options.seed)
    nonmember_sites = rng.integers(0, len(discriminators), len(context.nonmembers))
    auxiliary = context.auxiliary
    scores = {}
    for name, data, owners in (
        ("members", context.members, context.member_sites),
        ("nonmembers", context.nonmembers, nonmember_sites),
    ):
        neighbours = most_similar(
            context.embedding(name), context.embedding("auxiliary"), k=NEIGHBOURS
        )[1]
        raw, calibrated = np.zeros(len(data)), np.zeros(len(data))
        for site, discriminator in discriminators.items():
            mine = owners == site
            if not mine.any():
                continue
            raw[mine] = logits(discriminator, data.images[mine], data.labels[mine])
            near = neighbours[mine][:, :NEIGHBOURS].reshape(-1)
            baseline = logits(discriminator, auxiliary.images[near], auxiliary.labels[near])
            calibrated[mine] = raw[mine] - baseline.reshape(-1, NEIGHBOURS).mean(axis=1)
        scores[name] = (raw, calibrated)
    return AttackResult(
        findings={"sites": len(discriminators)},
        membership={
            "discriminator logit": context.membership_metrics(
                scores["members"][0], scores["nonmembers"][0]
            ),
            "calibrated": context.membership_metrics(scores["members"][1], scores["nonmembers"][1]),
        },
    )
