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

from client.handler import answer_train
from common.data import ImageSet
from common.data.medmnist import write_medmnist
from common.privacy.ledger import PrivacyLedger
from common.protocol import SiteError
from common.run_folder import SiteFolder
from tests.helpers.sites import LAST_REFUSED, encoded_requests, public_view, write_site_yaml

PATIENTS = 20


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
    node_config = write_site_yaml(
        folder,
        name="hospital",
        state_dir=folder / "state",
        data={
            "path": folder / "data.npz",
            "format": "medmnist",
            "ledger_key": "cxr",
            "options": {"class_names": ["a", "b"]},
        },
        privacy={"target_epsilon": 3.0, "delta": 1e-5, "unit": unit, "accountant": "rdp"},
    )
    ledger = PrivacyLedger.open(
        SiteFolder(folder / "state").dataset_ledger("cxr"), unit=unit, delta=1e-5, accountant="rdp"
    )
    with ledger.transaction():
        ledger.record_size_estimate(round_number=0, estimate=19.5)
    return node_config


@pytest.mark.parametrize("unit", ["image", "patient"])
@pytest.mark.parametrize("method", ["dpgan", "mean_embedding"])
def test_neighbouring_sites_reply_alike_but_for_their_dp_outputs(tmp_path, method, unit):
    full = deployed(tmp_path, "full", dataset(drop="none"), unit)
    neighbour = deployed(tmp_path, "neighbour", dataset(drop=unit), unit)

    views = {
        name: [
            public_view(answer_train(request, node_config=node_config, node_id=7))
            for request in encoded_requests(method)
        ]
        for name, node_config in (("full", full), ("neighbour", neighbour))
    }

    assert views["full"] == views["neighbour"]
    assert "metrics" in views["full"][0]
    refused = views["full"][-1] == ("error", SiteError.REFUSED_BUDGET)
    assert refused == LAST_REFUSED[method]
