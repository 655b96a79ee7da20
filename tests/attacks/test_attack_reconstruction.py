import dataclasses

import numpy as np
import torch

from attacks.reconstruction import attack, reconstruction_distances
from common.models import Generator, GeneratorMixture
from server.outputs import generate
from tests.helpers.configs import ATTACK_OPTIONS


def test_latent_search_reconstructs_the_generators_own_images_better_than_others():
    torch.manual_seed(0)
    generator = Generator(num_classes=2, latent_dim=16, width=16, resolution=32).eval()
    condition = np.array([1.0, 0.0], dtype=np.float32)
    own = generate(generator, condition, count=8, seed=1)
    others = np.random.default_rng(0).integers(0, 256, (8, 32, 32), dtype=np.uint8)
    labels = np.repeat(condition[None], 8, axis=0)

    own_distance = reconstruction_distances(generator, own, labels, steps=60, seed=0)
    other_distance = reconstruction_distances(generator, others, labels, steps=60, seed=0)

    assert own_distance.max() < other_distance.min()


def test_a_mixture_is_searched_component_by_component():
    torch.manual_seed(0)
    components = [Generator(2, 16, 16, 32).eval() for _ in range(2)]
    condition = np.array([0.0, 1.0], dtype=np.float32)
    from_second = generate(components[1], condition, count=8, seed=1)
    labels = np.repeat(condition[None], 8, axis=0)

    mixture_distance = reconstruction_distances(
        GeneratorMixture(components, 32), from_second, labels, steps=60, seed=0
    )
    first_distance = reconstruction_distances(components[0], from_second, labels, 60, seed=0)

    assert mixture_distance.max() < first_distance.min()


def test_the_generators_own_outputs_are_found_as_its_planted_members(planted):
    options = dataclasses.replace(ATTACK_OPTIONS, members=30, reconstruction_steps=5)
    context = planted("independent", options)

    result = attack(context)

    assert result.power["adequate"]
    assert result.power["count"] >= result.power["min_count"]
    assert set(result.power["by_score"]) == {"reconstruction", "calibrated"}
