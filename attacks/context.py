"""What every attack gets: the run's data split into evaluation members and non-members, the
attacker's auxiliary real data, a cached embedding, and where to write figures.

Evaluation is balanced: as many members (sampled from the sites' training images) as
non-members (the patient-disjoint holdout).

Auxiliary data (the attacker's "public data of the same modality"; reference set for the
calibrated attacks, training data of the embedding and of the linkage network) must be
patient-disjoint from both members and evaluation non-members:
- phantom runs: a fresh phantom population drawn with another seed (different patients);
- other sources: half of the holdout's patients; the other half are the evaluation
  non-members.

The control population (the membership attacks' negative control, attacks.controls) is real
images of the training population that no site trained on: the untrained images each site kept
out of every mechanism (data.untrained_fraction, recorded in the run's split); for phantom runs
without them a third fresh population. Other runs without them (planned before sites kept
them, or with data.untrained_fraction 0) have none, and the control falls back to half of the
non-members, which cannot see a difference between the training population and the holdout's.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from attacks.embedding import (
    Encoder,
    cached_encoder,
    embed,
    mean_feature,
    train_self_supervised,
)
from attacks.metrics import membership_metrics
from common.config import config_to_dict
from common.data import ImageSet
from common.data.phantom import generate_phantom
from common.run_data import RunData
from common.run_folder import RunFolder

# Phantom patients come from RNGs seeded by (seed, patient): another seed is other patients.
AUXILIARY_SEED_OFFSET = 1_000_003
CONTROL_SEED_OFFSET = 2_000_003
# With fewer patients a control's bootstrap over patients is noise.
MIN_CONTROL_PATIENTS = 10


@dataclass(frozen=True)
class AttackOptions:
    """members: cap on evaluation members (and non-members); 0 = as many as the holdout.
    Step counts bound the training the attacks do themselves."""

    members: int = 0
    seed: int = 0
    auxiliary_patients: int = 500
    embedding_steps: int = 400
    linkage_steps: int = 600
    reconstruction_steps: int = 150
    audit_steps: int = 500
    audit_canaries: int = 500
    audit_site: int = 0


@dataclass
class AttackContext:
    run: RunData
    members: ImageSet
    member_sites: np.ndarray  # the site that trained on each evaluation member
    nonmembers: ImageSet
    auxiliary: ImageSet
    auxiliary_source: str
    control: ImageSet | None  # the control population, when the data offers one
    control_sites: np.ndarray | None  # the site each control image is a share of, if known
    control_source: str
    figures_dir: Path
    cache_dir: Path
    options: AttackOptions
    # Where the attacks' networks train and run. Not one of the options, which a report's
    # attacks must share to be merged (suite._earlier_entries): it does not change what an
    # attack measures.
    device: torch.device
    _embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    _encoder: Encoder | None = None
    _center: np.ndarray | None = None

    def encoder(self) -> Encoder:
        """The self-supervised encoder, trained on the auxiliary data and cached."""
        if self._encoder is None:
            key = {
                "data": config_to_dict(self.run.config)["data"],
                "auxiliary": self.auxiliary_source,
                "steps": self.options.embedding_steps,
                "seed": self.options.seed,
            }
            self._encoder = cached_encoder(
                self.cache_dir,
                {"purpose": "self-supervised", **key},
                lambda: train_self_supervised(
                    self.auxiliary,
                    self.options.embedding_steps,
                    128,
                    self.options.seed,
                    device=self.device,
                ),
                device=self.device,
            )
        return self._encoder

    def membership_metrics(self, member_scores, nonmember_scores, members=None, nonmembers=None):
        """metrics.membership_metrics with the bootstrap over patients of the evaluation sets
        (or of `members` / `nonmembers` when an attack scores subsets)."""
        members = self.members if members is None else members
        nonmembers = self.nonmembers if nonmembers is None else nonmembers
        return membership_metrics(
            member_scores,
            nonmember_scores,
            self.options.seed,
            members.patient_keys(),
            nonmembers.patient_keys(),
        )

    def embedding(self, which: str) -> np.ndarray:
        """Embeddings of "members", "nonmembers", "auxiliary", "synthetic" or "training" (all
        of the run's members), centred on the auxiliary data's mean feature."""
        if which not in self._embeddings:
            images = {
                "members": self.members,
                "nonmembers": self.nonmembers,
                "auxiliary": self.auxiliary,
                "synthetic": self.run.synthetic,
                "training": self.run.members,
            }[which].images
            self._embeddings[which] = self.embed(images)
        return self._embeddings[which]

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Embeddings of any images, centred like those of `embedding`."""
        if self._center is None:
            self._center = mean_feature(self.encoder(), self.auxiliary.images)
        return embed(self.encoder(), images, self._center)


def member_sites(run: RunData) -> np.ndarray:
    """Site index of every image in run.members (which is sorted by data index)."""
    split = RunFolder(run.run_dir).read_split()
    owner = {index: site for site, indices in enumerate(split["sites"]) for index in indices}
    return np.array([owner[i] for i in sorted(owner)], dtype=np.int64)


def split_by_patient(data: ImageSet, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two patient-disjoint halves (by patient count) of `data`."""
    keys = data.patient_keys()
    patients = rng.permutation(np.unique(keys))
    first = np.isin(keys, patients[: len(patients) // 2])
    return np.flatnonzero(first), np.flatnonzero(~first)


def _fresh_phantom(run: RunData, patients: int, seed_offset: int, prefix: str) -> ImageSet:
    """Phantom patients of the run's distribution that the run has not seen."""
    data_config = run.config.data
    phantom = dataclasses.replace(
        data_config.options, num_patients=patients, seed=data_config.options.seed + seed_offset
    )
    fresh = generate_phantom(phantom, data_config.resolution)
    ids = np.char.add(prefix, fresh.patient_ids.astype(str))
    return dataclasses.replace(fresh, patient_ids=ids)


def auxiliary_data(run: RunData, options: AttackOptions) -> tuple[ImageSet, ImageSet, str]:
    """(auxiliary images, evaluation non-members, how the auxiliary images were obtained)."""
    if run.config.data.source == "phantom":
        patients = options.auxiliary_patients
        auxiliary = _fresh_phantom(run, patients, AUXILIARY_SEED_OFFSET, "aux-")
        seed = run.config.data.options.seed + AUXILIARY_SEED_OFFSET
        how = (
            f"a fresh phantom population ({patients} patients, seed {seed}), disjoint from the "
            "run's patients"
        )
        return auxiliary, run.holdout, how
    reference, evaluation = split_by_patient(run.holdout, np.random.default_rng(options.seed))
    how = (
        f"half of the holdout's patients ({len(reference)} images); the other half "
        f"({len(evaluation)} images) are the evaluation non-members"
    )
    return run.holdout.subset(reference), run.holdout.subset(evaluation), how


@dataclass(frozen=True)
class ControlPopulation:
    """Real images of the training population that no site trained on (None: the run has
    none), the site each is a share of (None: not a site's), and how they were obtained."""

    images: ImageSet | None
    sites: np.ndarray | None
    source: str


def control_population(run: RunData, count: int, rng: np.random.Generator) -> ControlPopulation:
    """At most `count` real images of the training population that no site trained on: the
    sites' untrained images where the run kept those of MIN_CONTROL_PATIENTS patients or more,
    else fresh phantom patients."""
    untrained = run.untrained
    kept_patients = 0 if untrained is None else len(np.unique(untrained.patient_keys()))
    if kept_patients >= MIN_CONTROL_PATIENTS:
        chosen = np.sort(rng.choice(len(untrained), min(count, len(untrained)), replace=False))
        how = (
            f"{len(chosen)} of the {len(untrained)} images the sites kept untrained (whole "
            "patients of the training population that no mechanism saw, "
            f"data.untrained_fraction {run.config.data.untrained_fraction:g})"
        )
        return ControlPopulation(untrained.subset(chosen), run.untrained_sites[chosen], how)
    if run.config.data.source != "phantom":
        kept = (
            f"untrained images of only {kept_patients} patients, fewer than {MIN_CONTROL_PATIENTS}"
            if kept_patients
            else "no untrained images of the training population (planned before sites kept "
            "them, with data.untrained_fraction 0, or a deployed consortium's)"
        )
        return ControlPopulation(None, None, f"none: the run kept {kept}")
    patients = max(2, -(-count // run.config.data.options.images_per_patient))
    fresh = _fresh_phantom(run, patients, CONTROL_SEED_OFFSET, "control-")
    seed = run.config.data.options.seed + CONTROL_SEED_OFFSET
    how = (
        f"a fresh phantom population of the training distribution ({patients} patients, seed "
        f"{seed}) that no site trained on"
    )
    return ControlPopulation(fresh.subset(np.arange(min(count, len(fresh)))), None, how)


def build_context(
    run: RunData,
    options: AttackOptions,
    figures_dir: Path,
    cache_dir: Path,
    *,
    device: torch.device,
) -> AttackContext:
    auxiliary, nonmember_pool, how = auxiliary_data(run, options)
    rng = np.random.default_rng(options.seed)
    count = min(len(run.members), len(nonmember_pool))
    if options.members:
        count = min(count, options.members)
    chosen_members = np.sort(rng.choice(len(run.members), count, replace=False))
    chosen_nonmembers = np.sort(rng.choice(len(nonmember_pool), count, replace=False))
    control = control_population(run, count, rng)
    return AttackContext(
        run=run,
        members=run.members.subset(chosen_members),
        member_sites=member_sites(run)[chosen_members],
        nonmembers=nonmember_pool.subset(chosen_nonmembers),
        auxiliary=auxiliary,
        auxiliary_source=how,
        control=control.images,
        control_sites=control.sites,
        control_source=control.source,
        figures_dir=figures_dir,
        cache_dir=cache_dir,
        options=options,
        device=device,
    )
