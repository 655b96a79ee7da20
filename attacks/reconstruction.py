"""GAN-Leaks white-box (Chen et al. 2020): the generator reconstructs its training images best.

Threat model: the attacker has the released generator (weights) and knows a query's label.
Score: minus the smallest pixel L2 distance between the query and G(z, label) over latents z
found by gradient descent from several random starts (higher = member). Calibrated: plus the
distance from the query to its nearest reference image (real non-members), standing in for
GAN-Leaks' reference generator, which would cost a second GAN training. Latent search is the
costliest attack, so it scores at most MAX_QUERIES members and as many non-members.
Positive control: the generator's own outputs, which a working search reconstructs exactly.
"""

import dataclasses

import numpy as np
import torch
from tqdm import tqdm

from attacks.context import AttackContext
from attacks.controls import Planted, Queries, membership_attack
from attacks.embedding import to_tensor
from attacks.neighbours import nearest, pixels
from attacks.registry import GENERATOR_ACCESS, AttackResult, register
from common.device import module_device
from common.models import AnyGenerator, Generator, components_of
from common.run_data import load_run_generator

RESTARTS = 3
BATCH = 256
MAX_QUERIES = 300
LEARNING_RATE = 0.05
OUTPUTS_SEED_OFFSET = 7919


def reconstruction_distances(
    generator: AnyGenerator, images: np.ndarray, labels: np.ndarray, steps: int, seed: int
) -> np.ndarray:
    """Per image: the best L2 (pixels in [0, 1]) between it and G(z, its label) over z; for a
    mixture, the best over its components, each searched on its own (the choice of component
    has no gradient, so one search over the mixture's latents would stay in one component).
    The search runs on the generator's device from latents drawn on the CPU."""
    distances = [
        _component_distances(component, images, labels, steps, seed)
        for component in components_of(generator)
    ]
    return np.min(distances, axis=0)


def _component_distances(
    generator: Generator, images: np.ndarray, labels: np.ndarray, steps: int, seed: int
) -> np.ndarray:
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    device = module_device(generator)
    rng = torch.Generator().manual_seed(seed)
    best = []
    for start in tqdm(range(0, len(images), BATCH), desc="reconstruction", leave=False):
        target = to_tensor(images[start : start + BATCH]).repeat(RESTARTS, 1, 1, 1).to(device)
        condition = torch.from_numpy(labels[start : start + BATCH]).repeat(RESTARTS, 1).to(device)
        z = torch.randn(len(target), generator.latent_dim, generator=rng).to(device)
        z.requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=LEARNING_RATE)
        for _ in range(steps):
            loss = (generator(z, condition) - target).pow(2).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            # The generator's [-1, 1] range is twice the [0, 1] pixel scale.
            error = (generator(z, condition) - target).flatten(1).norm(dim=1) / 2
        best.append(error.view(RESTARTS, -1).min(dim=0).values.cpu().numpy())
    return np.concatenate(best)


@torch.no_grad()
def own_outputs(generator: AnyGenerator, labels: np.ndarray, seed: int) -> np.ndarray:
    """uint8 images G(z, label), one per label: images the generator holds exactly."""
    device = module_device(generator)
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(len(labels), generator.latent_dim, generator=rng).to(device)
    images = generator(z, torch.from_numpy(labels).to(device)).squeeze(1)
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


@register(
    "mia-reconstruction",
    GENERATOR_ACCESS,
    "latent reconstruction distance against the generator (GAN-Leaks white-box), and "
    "calibrated by the distance to a reference set of real non-members",
    "higher score (better reconstruction) = member",
)
def attack(context: AttackContext) -> AttackResult:
    generator, _, _ = load_run_generator(context.run.run_dir)
    generator.to(context.device)
    steps, seed = context.options.reconstruction_steps, context.options.seed
    reference = pixels(context.auxiliary.images)

    def score(queries: Queries) -> dict[str, np.ndarray]:
        data = queries.data
        distance = reconstruction_distances(generator, data.images, data.labels, steps, seed)
        to_reference = nearest(pixels(data.images), reference)[0][:, 0]
        return {"reconstruction": -distance, "calibrated": to_reference - distance}

    def plant(queries: Queries) -> Planted:
        # A memorized image is one the generator can output: its own outputs stand for the
        # planted images (their labels; not the search's seed, whose first start would be
        # the answer).
        images = own_outputs(generator, queries.data.labels, seed + OUTPUTS_SEED_OFFSET)
        own = Queries(dataclasses.replace(queries.data, images=images), queries.sites)
        return Planted(own, score, "the generator's own outputs G(z, label)")

    return membership_attack(
        context,
        score=score,
        plant=plant,
        advice=f"a longer latent search (reconstruction_steps, now {steps}; {RESTARTS} restarts)",
        findings={"optimisation_steps": steps, "restarts": RESTARTS},
        cap=MAX_QUERIES,
    )
