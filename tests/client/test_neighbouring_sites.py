"""What a server learns from a site's replies does not depend on any one record, or patient,
except through the site's DP mechanisms.

Two deployed sites hold neighbouring datasets (one image, or all images of one patient, less)
and get the same requests through the site's real request handler. Every field of their
replies that is not a DP output (weights, release, DP_METRICS) must be equal. The DP size
estimate is the one input that differs in distribution; both ledgers hold the same estimate,
as a coupling of its noise would give, so that what is compared is everything else.
"""

import numpy as np
import pytest
import torch
import yaml
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from client.handler import answer_train
from common.config import config_from_dict
from common.data import ImageSet
from common.data.medmnist import write_medmnist
from common.models import build_models
from common.privacy.ledger import PrivacyLedger
from common.protocol import DP_METRICS, RoundRequest, SiteError, TrainRequest, encode_request
from common.run_folder import SiteFolder

SERVER_YAML = """
seed: 3
data:
  source: medmnist
  resolution: 28
  holdout_fraction: 0.2
  medmnist: {path: only-the-sites-have-data.npz, class_names: [a, b]}
model: {latent_dim: 8, generator_width: 8, discriminator_width: 8}
training: {batch_size: 8, method: METHOD}
mean_embedding: {frequencies: 16}
"""
PATIENTS = 20
# (round, local steps, planned steps) of each request; a DP-GAN site's third is over budget.
ROUNDS = {
    "dpgan": [(1, 2, 4), (2, 2, 4), (3, 2, 4)],
    "mean_embedding": [(1, 1, 1), (2, 1, 1)],
}
SHARES_DISCRIMINATOR = ("dpgan",)
# Whether the last request is over budget: a third DP-GAN round is; a second release gets
# what is left of the budget.
LAST_REFUSED = {"dpgan": True, "mean_embedding": False}


def dataset(*, drop: str) -> ImageSet:
    """40 images of 20 patients; `drop`: none, one image, or all images of one patient."""
    rng = np.random.default_rng(0)
    data = ImageSet(
        images=rng.integers(0, 256, (2 * PATIENTS, 28, 28), dtype=np.uint8),
        labels=np.eye(2, dtype=np.float32)[rng.integers(0, 2, 2 * PATIENTS)],
        class_names=("a", "b"),
        multi_label=False,
        patient_ids=np.array([f"p{i % PATIENTS}" for i in range(2 * PATIENTS)]),
    )
    keep = {
        "none": np.ones(len(data), bool),
        "image": np.arange(len(data)) != len(data) - 1,
        "patient": data.patient_ids != "p0",
    }[drop]
    return data.subset(np.flatnonzero(keep))


def deployed(tmp_path, name: str, data: ImageSet, unit: str) -> dict:
    """A site's data, a complete site.yaml and a ledger holding size estimate 19.5 units."""
    folder = tmp_path / name
    write_medmnist(data, folder / "data.npz")
    settings = {
        "name": "hospital",
        "state_dir": str(folder / "state"),
        "data": {
            "path": str(folder / "data.npz"),
            "format": "medmnist",
            "ledger_key": "cxr",
            "options": {"class_names": ["a", "b"]},
        },
        "privacy": {
            "target_epsilon": 3.0,
            "delta": 1e-5,
            "unit": unit,
            "accountant": "rdp",
        },
    }
    (folder / "site.yaml").write_text(yaml.safe_dump(settings))
    ledger = PrivacyLedger.open(
        SiteFolder(folder / "state").dataset_ledger("cxr"), unit=unit, delta=1e-5, accountant="rdp"
    )
    with ledger.transaction():
        ledger.record_size_estimate(0, 19.5)
    return {"site-config": str(folder / "site.yaml")}


def requests(method: str) -> list[RecordDict]:
    config_yaml = SERVER_YAML.replace("METHOD", method)
    config = config_from_dict(yaml.safe_load(config_yaml))
    torch.manual_seed(0)
    generator, discriminator = build_models(2, 28, config.model)
    rounds = ROUNDS[method]
    return [
        encode_request(
            TrainRequest(
                RoundRequest(number, steps, planned, share_discriminator=True),
                config_yaml,
                "/runs/probe",
                generator.state_dict(),
                discriminator.state_dict() if method in SHARES_DISCRIMINATOR else None,
            )
        )
        for number, steps, planned in rounds
    ]


def public_view(reply: RecordDict | SiteError) -> object:
    """What a reply shows that is not a DP output: array names and shapes, the metrics other
    than DP_METRICS, the config records, or the error code."""
    if isinstance(reply, SiteError):
        return ("error", int(reply))
    view = {}
    for name, record in reply.items():
        if isinstance(record, ArrayRecord):
            view[name] = {key: tuple(array.shape) for key, array in record.items()}
        elif isinstance(record, MetricRecord):
            view[name] = {key: v for key, v in record.items() if key not in DP_METRICS}
        else:
            assert isinstance(record, ConfigRecord)
            view[name] = dict(record)
    return view


@pytest.mark.parametrize("unit", ["image", "patient"])
@pytest.mark.parametrize("method", ["dpgan", "mean_embedding"])
def test_neighbouring_sites_reply_alike_but_for_their_dp_outputs(tmp_path, method, unit):
    full = deployed(tmp_path, "full", dataset(drop="none"), unit)
    neighbour = deployed(tmp_path, "neighbour", dataset(drop=unit), unit)

    views = {
        name: [
            public_view(answer_train(request, node_config=node_config, node_id=7))
            for request in requests(method)
        ]
        for name, node_config in (("full", full), ("neighbour", neighbour))
    }

    assert views["full"] == views["neighbour"]
    assert "metrics" in views["full"][0]
    refused = views["full"][-1] == ("error", SiteError.REFUSED_BUDGET)
    assert refused == LAST_REFUSED[method]
