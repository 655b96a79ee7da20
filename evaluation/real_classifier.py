"""The classifier trained on real training images, cached per dataset.

It is the TRTR model, the judge of label fidelity and the feature extractor of the
distribution metrics. Runs on the same data (e.g. one dataset at several epsilons) share it:
the cache key is a hash of the training images, labels and training settings.
"""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from common import atomic
from common.data import ImageSet
from common.device import CPU
from evaluation.classifiers import Classifier, build_classifier
from evaluation.training import TrainingSettings, train_classifier

# Bump when training changes in a way the settings do not show, to retire old cache entries.
CACHE_VERSION = 1


def cache_key(data: ImageSet, settings: TrainingSettings, steps_per_epoch: int) -> str:
    digest = hashlib.sha256()
    digest.update(data.images.tobytes())
    digest.update(data.labels.tobytes())
    recipe = {
        "version": CACHE_VERSION,
        "settings": asdict(settings),
        "steps_per_epoch": steps_per_epoch,
        "multi_label": data.multi_label,
        "class_names": list(data.class_names),
    }
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def real_classifier(
    data: ImageSet,
    settings: TrainingSettings,
    steps_per_epoch: int,
    cache_dir: Path,
    *,
    device: torch.device = CPU,
) -> tuple[Classifier, Path, bool]:
    """(classifier on `device`, its cache file, whether it came from the cache)."""
    path = (
        Path(cache_dir)
        / f"real-{settings.classifier}-{cache_key(data, settings, steps_per_epoch)}.pt"
    )
    if path.exists():
        model = build_classifier(settings.classifier, data.num_classes)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        tqdm.write(f"TRTR: reusing the real-data classifier cached in {path}")
        return model.to(device).eval(), path, True
    model = train_classifier(
        data.images, data.labels, data.multi_label, settings, steps_per_epoch, "TRTR", device=device
    )
    atomic.torch_save(model.state_dict(), path)
    return model, path, False
