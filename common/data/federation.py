"""From a config to the images each simulated site trains on, with a holdout set aside first."""

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from common import atomic
from common.config import Config, DataConfig, config_to_dict
from common.data import SOURCES, ImageSet
from common.data.splits import partition, set_aside_untrained, split_holdout
from common.errors import UserError

_datasets: dict[str, ImageSet] = {}


def _key(section: dict) -> str:
    return yaml.safe_dump(section, sort_keys=True)


def _source_stamp(data: DataConfig) -> str:
    """Size and modification time of the source's file or folder, so edits invalidate caches."""
    path = getattr(data.options, "path", "")
    if not path or not Path(path).exists():
        return ""
    stat = Path(path).stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def load_dataset(config: Config, cache_dir: Path | None = None) -> ImageSet:
    """The configured source's images at the configured resolution.

    Cached per process, and in `cache_dir` (as .npz) when given, keyed by the data config and
    the source's size and modification time.
    """
    data: DataConfig = config.data
    key = _key(config_to_dict(config)["data"]) + _source_stamp(data)
    if key in _datasets:
        return _datasets[key]
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if cache_file.exists():
            _datasets[key] = _read_cache(cache_file)
            return _datasets[key]
    spec = SOURCES.get(data.source)
    _datasets[key] = spec.load(data.options, data.resolution, data.dicom)
    if cache_file is not None:
        _write_cache(_datasets[key], cache_file)
    return _datasets[key]


def clear_memory_cache() -> None:
    """Forget the datasets loaded in this process (the disk cache stays)."""
    _datasets.clear()


def _write_cache(data: ImageSet, path: Path) -> None:
    arrays = {
        "images": data.images,
        "labels": data.labels,
        "class_names": np.array(data.class_names),
        "multi_label": np.array(data.multi_label),
    }
    for name in ("patient_ids", "splits"):
        if getattr(data, name) is not None:
            arrays[name] = getattr(data, name)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic.write_bytes(path, buffer.getvalue())


def _read_cache(path: Path) -> ImageSet:
    with np.load(path, allow_pickle=False) as arrays:
        return ImageSet(
            images=arrays["images"],
            labels=arrays["labels"],
            class_names=tuple(arrays["class_names"].tolist()),
            multi_label=bool(arrays["multi_label"]),
            patient_ids=arrays["patient_ids"] if "patient_ids" in arrays else None,
            splits=arrays["splits"] if "splits" in arrays else None,
        )


@dataclass(frozen=True)
class FederationSplit:
    """Indices into `data`: the holdout (never trained on), each site's training images and
    each site's untrained images (its share of the training population that it keeps out of
    every mechanism)."""

    data: ImageSet
    holdout: np.ndarray
    sites: tuple[np.ndarray, ...]
    untrained: tuple[np.ndarray, ...]

    def site_data(self, site: int) -> ImageSet:
        return self.data.subset(self.sites[site])

    def to_dict(self) -> dict:
        ids = self.data.patient_keys()
        return {
            "holdout": self.holdout.tolist(),
            "holdout_patients": sorted(set(ids[self.holdout].tolist())),
            "sites": [indices.tolist() for indices in self.sites],
            "untrained": [indices.tolist() for indices in self.untrained],
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
    trained, untrained = set_aside_untrained(
        data.subset(train), parts, config.data.untrained_fraction, config.seed
    )
    return FederationSplit(
        data,
        holdout,
        tuple(train[part] for part in trained),
        tuple(train[part] for part in untrained),
    )


def declared_class_names(config: Config) -> tuple[str, ...]:
    """The class names the config itself declares (empty if only the data knows them)."""
    options = config.data.options
    if config.data.source == "phantom":
        return tuple(options.findings)
    return tuple(getattr(options, "class_names", ()) or getattr(options, "classes", ()))


def label_space(config: Config) -> tuple[tuple[str, ...], bool]:
    """(class names, multi-label?) the generator is conditioned on.

    Taken from the config where it declares them, so a server without the data (deployment)
    knows the label space; otherwise read from the data.
    """
    names = declared_class_names(config)
    if config.data.source == "phantom":
        return names, True
    multi_label = getattr(config.data.options, "multi_label", False)
    if names and multi_label is not None:
        return names, bool(multi_label)
    data = load_dataset(config)
    return data.class_names, data.multi_label
