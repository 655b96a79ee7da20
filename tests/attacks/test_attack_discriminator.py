import dataclasses

import numpy as np
import torch
from torch.nn import functional as F

from attacks.context import member_sites
from attacks.discriminator import attack
from attacks.embedding import to_tensor
from common import atomic
from common.data.phantom import generate_phantom
from common.models import Discriminator
from common.run_folder import RunFolder


def _memorizing_discriminator(context, members, others, steps: int) -> Discriminator:
    """A discriminator trained to call exactly `members` real: what overfitting produces."""
    torch.manual_seed(0)
    config = context.run.config
    model = Discriminator(members.num_classes, config.model.discriminator_width, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    images = to_tensor(np.concatenate([members.images, others.images]))
    labels = torch.from_numpy(np.concatenate([members.labels, others.labels]))
    target = torch.cat([torch.ones(len(members)), torch.zeros(len(others))])
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(model(images, labels), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def _plant_site_discriminators(context, steps: int) -> None:
    options = dataclasses.replace(context.run.config.data.options, seed=99, num_patients=20)
    others = generate_phantom(options, 32)
    owners = member_sites(context.run)
    for site in range(context.run.config.federation.num_sites):
        members = context.run.members.subset(np.flatnonzero(owners == site))
        model = _memorizing_discriminator(context, members, others, steps)
        path = RunFolder(context.run.run_dir).site(site).training_state
        path.parent.mkdir(parents=True)
        atomic.torch_save({"discriminator": model.state_dict()}, path)


def test_a_discriminator_that_memorized_its_site_gives_its_members_away(planted):
    context = planted("independent")
    _plant_site_discriminators(context, steps=60)

    result = attack(context)

    assert result.membership["discriminator logit"]["auc"] > 0.8
    assert result.membership["calibrated"]["auc"] > 0.8
    # Its positive control: discriminators made to memorize planted non-members give those away.
    assert result.power["by_score"]["discriminator logit"] > 0.8


def test_without_site_discriminators_the_attack_says_it_cannot_run(planted):
    context = planted("independent")

    result = attack(context)

    assert RunFolder(context.run.run_dir).site(0).training_state.name in result.skipped
    assert not result.membership
