"""Run folders written the way `privsynth run` leaves them (through common.run_folder's
RunFolder), small enough for the evaluation, attack, run-data and reader-study tests."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from common.conditions import condition_rows
from common.config import Config, config_from_dict
from common.data import ImageSet
from common.data.federation import FederationSplit, plan_federation
from common.data.phantom import PhantomOptions, generate_phantom
from common.models import Generator
from common.privacy.accounting import calibrate_release_noise
from common.privacy.ledger import PrivacyLedger
from common.run_folder import RunFolder, site_name
from server.outputs import generate
from tests.helpers.configs import PLANTED


def start_run(
    run_dir: Path, overrides: list[str], name: str = "tiny"
) -> tuple[RunFolder, Config, FederationSplit]:
    """A new run folder holding what a run writes first: its config and its split."""
    config = config_from_dict({"name": name}, overrides)
    split = plan_federation(config)
    run_dir.mkdir(parents=True)
    folder = RunFolder(run_dir)
    folder.write_config(config)
    folder.write_split(split.to_dict())
    return folder, config, split


def write_untrained_generator(folder: RunFolder, config: Config, data: ImageSet) -> Generator:
    """A freshly initialised generator for `data`'s classes, saved as the run's generator."""
    model = config.model
    generator = Generator(
        data.num_classes, model.latent_dim, model.generator_width, config.data.resolution
    )
    folder.write_generator(
        state_dict=generator.state_dict(),
        class_names=data.class_names,
        multi_label=data.multi_label,
        resolution=config.data.resolution,
        model=model,
    )
    return generator


def write_synthetic(
    folder: RunFolder,
    images: np.ndarray,
    labels: np.ndarray,
    data: ImageSet,
    row_names: list[str] | None = None,
) -> None:
    """`images` with their 0/1 label rows as the run's synthetic set; each row is named by
    its classes joined with "+" unless `row_names` are given."""
    labels = np.asarray(labels)
    if row_names is None:
        row_names = ["+".join(n for n, v in zip(data.class_names, row) if v) for row in labels]
    folder.write_synthetic(
        images=images,
        conditions=labels,
        row_names=row_names,
        class_names=data.class_names,
        multi_label=data.multi_label,
    )


def write_labelled_run(run_dir: Path, labels: np.ndarray) -> None:
    """A run of the multi-label phantom data (30 patients) whose synthetic set is flat grey
    32 px images with `labels` (0/1 rows); no generator, no summary."""
    folder, _, split = start_run(run_dir, ["data.phantom.num_patients=30"])
    images = np.full((len(labels), 32, 32), 7, dtype=np.uint8)
    write_synthetic(folder, images, labels, split.data)


def write_planted_run(run_dir: Path, synthetic: str) -> None:
    """A PLANTED run whose synthetic set is "copies" (the training images themselves) or
    "independent" (fresh phantom patients of the same distribution), and an untrained
    generator."""
    folder, config, plan = start_run(run_dir, PLANTED, name="planted")
    members = plan.data.subset(np.sort(np.concatenate(plan.sites)))
    if synthetic == "copies":
        images, labels = members.images, members.labels
    else:
        options = dataclasses.replace(config.data.options, seed=777, num_patients=20)
        fresh = generate_phantom(options, config.data.resolution)
        images, labels = fresh.images, fresh.labels
    write_synthetic(folder, images, labels.astype(np.uint8), members)
    write_untrained_generator(folder, config, members)


def write_finished_run(run_dir: Path, overrides: list[str], synthetic_per_class: int = 8) -> Path:
    """A finished run: config, split, summary, an untrained generator and its synthetic set
    (`synthetic_per_class` images of each condition)."""
    folder, config, split = start_run(run_dir, overrides)
    folder.write_summary({"epsilon_per_site": {"site-0": 10.0}})
    data = split.data
    torch.manual_seed(0)
    generator = write_untrained_generator(folder, config, data).eval()
    conditions = condition_rows(data.class_names, data.multi_label)
    images = [
        generate(generator, c, synthetic_per_class, seed=i) for i, (_, c) in enumerate(conditions)
    ]
    write_synthetic(
        folder,
        np.concatenate(images),
        np.repeat(np.stack([c for _, c in conditions]), synthetic_per_class, axis=0),
        data,
        row_names=[name for name, _ in conditions for _ in range(synthetic_per_class)],
    )
    return run_dir


def write_release_ledgers(folder: RunFolder, config: Config, epsilon: float) -> None:
    """Each site's ledger holding one Gaussian release calibrated to `epsilon` (none for inf),
    and the summary a run writes from them."""
    privacy = config.privacy
    spent = {}
    for site in range(config.federation.num_sites):
        ledger = PrivacyLedger.open(
            folder.site(site).ledger,
            unit=privacy.unit,
            delta=privacy.delta,
            accountant=privacy.accountant,
        )
        if math.isfinite(epsilon):
            sigma = calibrate_release_noise(
                history=[],
                target_epsilon=epsilon,
                delta=privacy.delta,
                accountant=ledger.accountant,
            )
            with ledger.transaction():
                ledger.record_release(round_number=1, noise_multiplier=sigma)
        spent[site_name(site)] = ledger.epsilon() if math.isfinite(epsilon) else math.inf
    folder.write_summary(
        {
            "epsilon_per_site": spent,
            "delta_per_site": {site: privacy.delta for site in spent},
        }
    )


def write_shifted_holdout_run(
    run_dir: Path, data_file: Path, synthetic: str, epsilon: float, overrides: list[str] = ()
) -> None:
    """A mean-embedding run on `data_file` (tests.helpers.datasets.write_shifted_holdout_npz:
    its holdout is another population) whose sites released at `epsilon`, and whose synthetic
    set is "copies" (the training images themselves, a memorising generator) or "independent"
    (fresh phantom films of the training population, a generator that learned the population
    and no one in it)."""
    folder, config, plan = start_run(
        run_dir,
        [
            "data.source=medmnist",
            f"data.medmnist.path={data_file}",
            "data.resolution=28",
            "data.holdout_split=val",
            "data.untrained_fraction=0.2",
            "federation.num_sites=2",
            "training.method=mean_embedding",
            "privacy.accountant=prv",
            *overrides,
        ],
        name="shifted-holdout",
    )
    members = plan.data.subset(np.sort(np.concatenate(plan.sites)))
    if synthetic == "copies":
        images, labels = members.images, members.labels
    else:
        fresh = generate_phantom(PhantomOptions(num_patients=300, images_per_patient=1, seed=9), 28)
        images = fresh.images
        labels = np.eye(2)[fresh.labels.any(axis=1).astype(np.int64)]
    write_synthetic(folder, images, labels.astype(np.uint8), members)
    write_untrained_generator(folder, config, members)
    write_release_ledgers(folder, config, epsilon)
