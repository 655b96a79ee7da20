"""The server's side of the mean_embedding method: pool the sites' noised releases into one
mean embedding per group and fit the generator to it. Post-processing of DP outputs only, so
it costs no privacy however long it runs. No Flower here."""

import os
import time
from dataclasses import replace

import torch
from tqdm import tqdm

from common.conditions import group_membership, sample_conditions
from common.config import Config
from common.device import CPU, module_device, tensors_to
from common.mean_embedding import RandomFourierFeatures, features_for
from common.models import Generator, build_generator, components_of
from common.models.weight_average import WeightAverage

StateDict = dict[str, torch.Tensor]


def class_means(releases: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-class mean embeddings (K, dim), pooled noised counts (K,)) from the sites' sums."""
    sums = sum(release["feature_sums"].double() for release in releases)
    counts = sum(release["counts"].double() for release in releases)
    # A noised count can come out near zero or negative for a class a site barely has.
    return (sums / counts.clamp(min=1.0)[:, None]).float(), counts.float()


def fit_generator(
    config: Config,
    num_classes: int,
    multi_label: bool,
    generator_state: StateDict,
    releases: list[dict[str, torch.Tensor]],
    show_progress: bool = True,
    *,
    device: torch.device = CPU,
) -> tuple[StateDict, float]:
    """(fitted generator weights on the CPU, final loss): minimise, over generated batches,
    sum over groups of |mean phi(generated images of the group) - released group mean|^2
    (groups: classes, or findings and "no finding"; see common.conditions.group_membership).
    A mixture's components are fitted one after the other, each from its own start and with
    its own latent draws (seed + k); the loss is their mean. `device` runs the fit."""
    settings = config.mean_embedding
    features = tensors_to(features_for(config), device)
    targets, counts = class_means(releases)
    targets, present = targets.to(device), (counts >= 1.0).to(device)
    generator = build_generator(num_classes, config.data.resolution, config.model)
    generator.load_state_dict(generator_state)
    generator.to(device)
    components = components_of(generator)
    # The sites are idle while the server fits: use every core, whatever OMP_NUM_THREADS
    # the simulation set for the site processes.
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        bar = tqdm(
            total=settings.generator_steps * len(components),
            desc="fitting the generator to the sites' mean embeddings",
            unit="step",
            disable=not show_progress,
        )
        losses = [
            _fit_component(
                component,
                features,
                targets,
                present,
                config,
                num_classes,
                multi_label,
                torch.Generator().manual_seed(config.seed + k),
                bar,
            )
            for k, component in enumerate(components)
        ]
        bar.close()
    finally:
        torch.set_num_threads(threads)
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    return state, sum(losses) / len(losses)


def fit_seconds_per_step(
    config: Config,
    num_classes: int,
    multi_label: bool,
    *,
    device: torch.device,
    probe_steps: int = 4,
) -> float:
    """Seconds one fit step takes on `device`, timed on a throwaway generator and made-up
    targets (for the run-time estimate; nothing private is read)."""
    features = tensors_to(features_for(config), device)
    generator = components_of(build_generator(num_classes, config.data.resolution, config.model))[0]
    generator.to(device)
    width = group_membership(torch.eye(num_classes), multi_label).shape[1]
    targets = torch.zeros(width, features.dim, device=device)
    present = torch.ones(width, dtype=torch.bool, device=device)
    probe = replace(
        config, mean_embedding=replace(config.mean_embedding, generator_steps=probe_steps)
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        bar = tqdm(disable=True)
        _fit_component(
            generator,
            features,
            targets,
            present,
            probe,
            num_classes,
            multi_label,
            torch.Generator().manual_seed(0),
            bar,
        )  # warm-up
        started = time.perf_counter()
        _fit_component(
            generator,
            features,
            targets,
            present,
            probe,
            num_classes,
            multi_label,
            torch.Generator().manual_seed(1),
            bar,
        )
        return (time.perf_counter() - started) / probe_steps
    finally:
        torch.set_num_threads(threads)


def _fit_component(
    generator: Generator,
    features: RandomFourierFeatures,
    targets: torch.Tensor,
    present: torch.Tensor,
    config: Config,
    num_classes: int,
    multi_label: bool,
    rng: torch.Generator,
    bar: tqdm,
) -> float:
    """Fit one generator in place, on the device of its weights; returns its last loss.
    With mean_embedding.generator_ema > 0 the generator ends as the average of its weights;
    mean_embedding.generator_layers says which weights move.

    `rng` is a CPU generator and every draw is made on the CPU and then moved: a seeded fit
    on a GPU sees the same conditions and latents as on the CPU."""
    settings = config.mean_embedding
    device = module_device(generator)
    generator.train()
    trained = (
        generator.input_parameters()
        if settings.generator_layers == "input"
        else list(generator.parameters())
    )
    # Layers the fit keeps need no weight gradients: backward only passes through them.
    for parameter in generator.parameters():
        parameter.requires_grad_(any(parameter is moved for moved in trained))
    optimizer = torch.optim.Adam(trained, lr=settings.generator_lr, betas=(0.5, 0.999))
    decay = settings.generator_ema
    average = WeightAverage(generator, decay=decay) if decay else None
    loss_value = float("nan")
    for _ in range(settings.generator_steps):
        conditions = sample_conditions(
            num_classes * settings.batch_per_class,
            num_classes=num_classes,
            multi_label=multi_label,
            prior=config.model.multilabel_prior,
            generator=rng,
            balanced=True,
        ).to(device)
        z = torch.randn(len(conditions), generator.latent_dim, generator=rng).to(device)
        phi = features(generator(z, conditions))
        membership = group_membership(conditions, multi_label)
        generated = (membership.T @ phi) / membership.sum(dim=0).clamp(min=1.0)[:, None]
        loss = (generated - targets)[present].pow(2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if average:
            average.update()
        loss_value = float(loss.detach())
        bar.update()
        bar.set_postfix(loss=f"{loss_value:.4f}")
    if average:
        generator.load_state_dict(average.model.state_dict())
    return loss_value
