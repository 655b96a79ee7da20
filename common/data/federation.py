"""From a config to the images each simulated site trains on, with a holdout set aside first."""

from dataclasses import dataclass

import numpy as np
import yaml

from common.config import Config, DataConfig, config_to_dict
from common.data import SOURCES, ImageSet
from common.data.splits import partition, split_holdout
from common.errors import UserError

_datasets: dict[str, ImageSet] = {}


def _key(section: dict) -> str:
    return yaml.safe_dump(section, sort_keys=True)


def load_dataset(config: Config) -> ImageSet:
    """The configured source's images at the configured resolution (cached per process)."""
    data: DataConfig = config.data
    key = _key(config_to_dict(config)["data"])
    if key not in _datasets:
        spec = SOURCES.get(data.source)
        _datasets[key] = spec.load(data.options, data.resolution, data.dicom)
    return _datasets[key]


@dataclass(frozen=True)
class FederationSplit:
    """Indices into `data`: the holdout (never trained on) and each site's training images."""

    data: ImageSet
    holdout: np.ndarray
    sites: tuple[np.ndarray, ...]

    def site_data(self, site: int) -> ImageSet:
        return self.data.subset(self.sites[site])

    def to_dict(self) -> dict:
        ids = self.data.patient_keys()
        return {
            "holdout": self.holdout.tolist(),
            "holdout_patients": sorted(set(ids[self.holdout].tolist())),
            "sites": [indices.tolist() for indices in self.sites],
        }


def plan_federation(config: Config) -> FederationSplit:
    """Deterministic in config.seed: the same config gives every process the same split."""
    data = load_dataset(config)
    if len(data) == 0:
        raise UserError(
            f"data source {config.data.source!r} produced no images; "
            f"check data.{config.data.source}"
        )
    train, holdout = split_holdout(
        data, config.data.holdout_fraction, config.data.holdout_split, config.seed
    )
    federation = config.federation
    parts = partition(
        data.subset(train),
        federation.num_sites,
        federation.partition,
        federation.partition_alpha,
        config.seed,
    )
    return FederationSplit(data, holdout, tuple(train[part] for part in parts))


def label_space(config: Config) -> tuple[tuple[str, ...], bool]:
    """(class names, multi-label?) the generator is conditioned on.

    Taken from the config where it declares them, so a server without the data (deployment)
    knows the label space; otherwise read from the data.
    """
    options = config.data.options
    if config.data.source == "phantom":
        return tuple(options.findings), True
    names = getattr(options, "class_names", ()) or getattr(options, "classes", ())
    multi_label = getattr(options, "multi_label", False)
    if names and multi_label is not None:
        return tuple(names), bool(multi_label)
    data = load_dataset(config)
    return data.class_names, data.multi_label
