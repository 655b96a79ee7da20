"""A server cannot read a site's data through its error replies.

The probes are those a malicious coordinator would send: a label column whose cell values
would appear in a parse error, and a patient pattern that fails only if one patient's files
exist. A site reads its data only as its own site.yaml says and answers with fixed codes, so
each probe gets the same reply whether or not the probed value exists.
"""

import csv

import numpy as np
import pytest
import yaml
from PIL import Image

from client.handler import answer_train
from common.protocol import SiteError
from common.run_folder import SiteFolder
from tests.helpers.sites import encoded_requests, public_view, write_site_yaml

PATIENT_FILES = ["00012345_000.png", "00012345_001.png", "00020000_000.png", "00030000_000.png"]


def csv_site(tmp_path, name: str, labels=("a", "b", "a", "b")) -> dict:
    """A CSV site whose manifest has a column the server must never read ("Secret")."""
    folder = tmp_path / name
    folder.mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for index in range(24):
        file_name = PATIENT_FILES[index % 4].replace("_00", f"_{index:02d}")
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / file_name)
        patient = file_name.split("_")[0]
        label = labels[index % len(labels)]
        rows.append(
            {"Image Index": file_name, "Finding Labels": label, "Patient ID": patient}
            | {"Secret": "v"}
        )
    with open(folder / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return write_site_yaml(
        folder,
        name="hospital",
        state_dir=folder / "state",
        data={
            "path": folder / "manifest.csv",
            "format": "csv",
            "options": {"classes": ["a", "b"], "multi_label": False},
        },
        privacy={"target_epsilon": 3.0, "delta": 1e-5, "unit": "patient", "accountant": "rdp"},
    )


def probe(data_section: dict):
    """A release request whose server config's data section is a probe."""
    content = encoded_requests("mean_embedding")[0]
    config = yaml.safe_load(content["request"]["config"])
    config["data"] = data_section
    config["federation"] = {"partition": "by-patient"}
    content["request"]["config"] = yaml.safe_dump(config)
    return content


def csv_probe(**options) -> dict:
    return {
        "source": "csv",
        "resolution": 28,
        "holdout_fraction": 0.0,
        "csv": {"path": "server-side.csv", "classes": ["a", "b"], "multi_label": False, **options},
    }


@pytest.mark.parametrize(
    "probes",
    [
        # Cell values of any column would appear in "label 'v' (column 'Secret')".
        [{"label_column": "Secret"}, {"label_column": "No such column"}, {}],
        # Fails only if patient 00012345's files exist: an exact membership test.
        [
            {"patient_pattern": r"^(?!00012345_)(?P<patient>\d+)_"},
            {"patient_pattern": r"^(?!99999999_)(?P<patient>\d+)_"},
            {},
        ],
    ],
    ids=["label-column", "patient-pattern"],
)
def test_probes_get_the_same_reply_whether_or_not_the_value_exists(tmp_path, probes):
    views = [
        public_view(
            answer_train(
                probe(csv_probe(**options)),
                node_config=csv_site(tmp_path, f"site-{number}"),
                node_id=7,
            )
        )
        for number, options in enumerate(probes)
    ]

    assert views[0] == views[1] == views[2]
    assert "metrics" in views[0]


def test_a_data_error_tells_the_server_a_code_and_the_site_log_the_details(tmp_path):
    node_config = csv_site(tmp_path, "site", labels=("a", "b", "secret-diagnosis"))

    reply = answer_train(encoded_requests("mean_embedding")[0], node_config=node_config, node_id=7)

    assert reply == SiteError.SITE_DATA_ERROR
    site_log = SiteFolder(tmp_path / "site" / "state").log.read_text()
    assert "secret-diagnosis" in site_log and "manifest.csv" in site_log
