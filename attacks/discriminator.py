"""LOGAN white-box (Hayes et al. 2019): a site's discriminator scores its training images high.

Threat model: the attacker obtains one site's discriminator (its final local state, e.g. from
a breached site or a shared checkpoint) and knows a query image's label.
Score: the discriminator's logit on the query (higher = member). Each member is scored by its
own site's discriminator, each non-member by a randomly drawn site's. Calibrated: minus the
mean logit of the query's 5 nearest auxiliary images (self-supervised embedding) under the same
discriminator, so images the discriminator likes for their look alone stop looking like
members. Positive control: copies of the site discriminators trained further to call planted
images real and other real images fake, until they have memorized them.
"""

import copy

import numpy as np
import torch
from torch.nn import functional as F

from attacks.context import AttackContext
from attacks.controls import Planted, Queries, Scorer, membership_attack
from attacks.embedding import to_tensor
from attacks.neighbours import most_similar
from attacks.registry import DISCRIMINATOR_ACCESS, AttackResult, register
from common.data import ImageSet
from common.device import module_device
from common.models import Discriminator
from common.run_folder import RunFolder, site_name

NEIGHBOURS = 5
# The positive control's memorization: full-batch steps on the planted images.
MEMORIZE_STEPS = 100
MEMORIZE_LR = 3e-3


def load_site_discriminator(context: AttackContext, site: int) -> Discriminator | None:
    """The site's final discriminator, on the context's device; None if it left none."""
    path = RunFolder(context.run.run_dir).site(site).training_state
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    run = context.run
    discriminator = Discriminator(
        run.members.num_classes, run.config.model.discriminator_width, run.members.resolution
    )
    discriminator.load_state_dict(state["discriminator"])
    return discriminator.to(context.device).eval()


@torch.no_grad()
def logits(discriminator: Discriminator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    device = module_device(discriminator)
    scores = discriminator(to_tensor(images).to(device), torch.from_numpy(labels).to(device))
    return scores.cpu().numpy()


def memorized(
    discriminator: Discriminator, planted: ImageSet, others: ImageSet, seed: int
) -> Discriminator:
    """A copy of `discriminator` trained further to call `planted` real and as many `others`
    (other real images) fake: one that has memorized exactly the planted images. Trained on
    the device of `discriminator`."""
    torch.manual_seed(seed)
    model = copy.deepcopy(discriminator).train()
    device = module_device(model)
    rows = np.random.default_rng(seed).choice(len(others), min(len(others), len(planted)), False)
    images = to_tensor(np.concatenate([planted.images, others.images[rows]])).to(device)
    labels = torch.from_numpy(np.concatenate([planted.labels, others.labels[rows]])).to(device)
    target = torch.cat([torch.ones(len(planted)), torch.zeros(len(rows))]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=MEMORIZE_LR)
    for _ in range(MEMORIZE_STEPS):
        loss = F.binary_cross_entropy_with_logits(model(images, labels), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def scorer(context: AttackContext, discriminators: dict[int, Discriminator]) -> Scorer:
    """Each query scored by its site's discriminator: (raw, calibrated) logits."""
    auxiliary = context.auxiliary

    def score(queries: Queries) -> dict[str, np.ndarray]:
        data = queries.data
        neighbours = most_similar(
            context.embed(data.images), context.embedding("auxiliary"), k=NEIGHBOURS
        )[1]
        raw, calibrated = np.zeros(len(data)), np.zeros(len(data))
        for site, discriminator in discriminators.items():
            mine = queries.sites == site
            if not mine.any():
                continue
            raw[mine] = logits(discriminator, data.images[mine], data.labels[mine])
            near = neighbours[mine][:, :NEIGHBOURS].reshape(-1)
            baseline = logits(discriminator, auxiliary.images[near], auxiliary.labels[near])
            calibrated[mine] = raw[mine] - baseline.reshape(-1, NEIGHBOURS).mean(axis=1)
        return {"discriminator logit": raw, "calibrated": calibrated}

    return score


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
    missing = [site for site, model in discriminators.items() if model is None]
    if missing:
        state = RunFolder(context.run.run_dir).site(missing[0]).training_state.name
        sites = ", ".join(site_name(site) for site in missing)
        return AttackResult(skipped=f"no discriminator state ({state}) for {sites}")
    seed = context.options.seed

    def plant(queries: Queries) -> Planted:
        fitted = {
            site: memorized(model, queries.data, context.run.members, seed)
            for site, model in discriminators.items()
        }
        description = (
            f"the site discriminators trained {MEMORIZE_STEPS} more steps to call them real "
            "and members fake"
        )
        return Planted(queries, scorer(context, fitted), description)

    return membership_attack(
        context,
        score=scorer(context, discriminators),
        plant=plant,
        advice=(
            f"more non-members to plant and compare (now {len(context.nonmembers)}) or more "
            f"auxiliary images for the calibration (now {len(context.auxiliary)})"
        ),
        findings={"sites": len(discriminators)},
    )
