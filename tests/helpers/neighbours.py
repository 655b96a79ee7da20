"""Two deployed sites whose data differ by one privacy unit, and what a coordinator learns
from their replies: the helpers of the neighbouring-sites tests and the coordinator fuzzer."""

from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, RecordDict

from client.handler import answer_train
from common.data import ImageSet
from common.data.medmnist import write_medmnist
from common.privacy.ledger import PrivacyLedger
from common.protocol import SiteError
from common.run_folder import SiteFolder
from tests.helpers.sites import public_view, write_site_yaml

PATIENTS = 20
LEDGER_KEY = "cxr"
TARGET_EPSILON = 3.0
DELTA = 1e-5


def neighbour_data(*, drop: str, bright: bool = False) -> ImageSet:
    """40 images of 20 patients; `drop`: none, one image (the last), or all images of one
    patient (p0). `bright`: that image, or that patient's images, are all 255, the input that
    overflows a projection first."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2 * PATIENTS, 28, 28), dtype=np.uint8)
    patient_ids = np.array([f"p{i % PATIENTS}" for i in range(2 * PATIENTS)])
    if bright:
        images[-1] = 255
        images[patient_ids == "p0"] = 255
    data = ImageSet(
        images=images,
        labels=np.eye(2, dtype=np.float32)[rng.integers(0, 2, 2 * PATIENTS)],
        class_names=("a", "b"),
        multi_label=False,
        patient_ids=patient_ids,
    )
    keep = {
        "none": np.ones(len(data), bool),
        "image": np.arange(len(data)) != len(data) - 1,
        "patient": data.patient_ids != "p0",
    }[drop]
    return data.subset(np.flatnonzero(keep))


def deployed_site(
    folder: Path,
    data: ImageSet | Path,
    unit: str,
    *,
    size_estimate: float | None = 19.5,
    share_discriminator: bool = True,
    prior: Path | None = None,
    **data_settings,
) -> dict:
    """Node config of a site on `data` (or an existing MedMNIST file) with a complete site.yaml
    (its own public prior, if `prior` names one) and, unless `size_estimate` is None, a
    ledger that already holds that DP size estimate: two neighbours given the same estimate
    are what a coupling of its noise gives."""
    if isinstance(data, ImageSet):
        write_medmnist(data, folder / "data.npz")
        data = folder / "data.npz"
    node_config = write_site_yaml(
        folder,
        name="hospital",
        state_dir=folder / "state",
        data={
            "path": data,
            "format": "medmnist",
            "ledger_key": LEDGER_KEY,
            "options": {"class_names": ["a", "b"]},
            **data_settings,
        },
        privacy={
            "target_epsilon": TARGET_EPSILON,
            "delta": DELTA,
            "unit": unit,
            "accountant": "rdp",
        },
        outputs={"discriminator": share_discriminator},
        **({"prior": prior} if prior else {}),
    )
    if size_estimate is not None:
        ledger = site_ledger(folder, unit)
        with ledger.transaction():
            ledger.record_size_estimate(round_number=0, estimate=size_estimate)
    return node_config


def site_ledger(folder: Path, unit: str) -> PrivacyLedger:
    return PrivacyLedger.open(
        SiteFolder(folder / "state").dataset_ledger(LEDGER_KEY),
        unit=unit,
        delta=DELTA,
        accountant="rdp",
    )


def ask(node_config: dict, request: RecordDict) -> RecordDict | SiteError:
    """The site's answer through its real request handler. The global torch seed is fixed
    first: a site that keeps its own discriminator initialises it from it, and neighbours
    must start from the same one."""
    torch.manual_seed(0)
    return answer_train(request, node_config=node_config, node_id=7)


def non_finite_outputs(reply: RecordDict | SiteError) -> list[str]:
    """The arrays of a reply that hold a NaN or an infinity."""
    if isinstance(reply, SiteError):
        return []
    return [
        f"{name}.{key}"
        for name, record in reply.items()
        if isinstance(record, ArrayRecord)
        for key, array in record.items()
        if not np.isfinite(array.numpy()).all()
    ]


def assert_alike_but_for_dp_outputs(
    full: RecordDict | SiteError, neighbour: RecordDict | SiteError
) -> None:
    """Every field that is not a DP output equal, and the DP outputs finite."""
    assert public_view(full) == public_view(neighbour)
    assert non_finite_outputs(full) == []
    assert non_finite_outputs(neighbour) == []
