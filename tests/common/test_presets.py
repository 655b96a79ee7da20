"""The shipped presets on data files the tests write: DICOM folder, ChestX-ray14 manifest."""

import numpy as np
from PIL import Image

from cli.main import main
from tests.helpers.dicom import write_dicom


def write_brain_ct(root, patients=3, slices=2):
    rng = np.random.default_rng(0)
    for label in ("hemorrhage", "normal"):
        (root / label).mkdir(parents=True)
        for patient in range(patients):
            for slice_index in range(slices):
                hounsfield = rng.integers(-100, 120, (48, 48)).astype(np.int16)
                write_dicom(
                    root / label / f"{label[0]}{patient}_{slice_index}.dcm",
                    hounsfield + 1024,
                    RescaleSlope=1,
                    RescaleIntercept=-1024,
                )


def test_brain_ct_preset_reads_a_dicom_folder_per_patient(tmp_path, capsys):
    write_brain_ct(tmp_path / "ct")

    code = main(
        ["run", "brain-ct", "--dry-run", "--set", f"data.folder.path={tmp_path / 'ct'}"]
        + ["--set", "data.resolution=32", "--set", "data.holdout_fraction=0.2"]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "data: 12 images" in out
    assert out.count("noise multiplier") == 3
    assert "patients, sample rate" in out


def test_brain_ct_preset_names_a_corrupt_dicom(tmp_path, capsys):
    write_brain_ct(tmp_path / "ct")
    (tmp_path / "ct" / "normal" / "n9_0.dcm").write_bytes(b"not a dicom file")

    code = main(["run", "brain-ct", "--dry-run", "--set", f"data.folder.path={tmp_path / 'ct'}"])

    assert code == 2
    assert "n9_0.dcm" in capsys.readouterr().err


def test_chestxray14_preset_reads_the_nih_manifest(tmp_path, capsys):
    images = tmp_path / "images_001" / "images"
    images.mkdir(parents=True)
    rows = ["Image Index,Finding Labels,Follow-up #,Patient ID"]
    findings = ["No Finding", "Effusion|Cardiomegaly", "Nodule", "Atelectasis|Effusion"]
    for patient in range(8):
        for follow_up in range(2):
            name = f"{patient:08d}_{follow_up:03d}.png"
            Image.fromarray(np.full((80, 80), patient * 20, np.uint8)).save(images / name)
            rows.append(f"{name},{findings[patient % 4]},{follow_up},{patient}")
    (tmp_path / "Data_Entry_2017.csv").write_text("\n".join(rows) + "\n")

    code = main(
        [
            "run",
            "chestxray14",
            "--dry-run",
            "--set",
            f"data.csv.path={tmp_path}/Data_Entry_2017.csv",
        ]
        + ["--set", "data.holdout_fraction=0.25", "--set", "training.batch_size=2"]
    )

    out = capsys.readouterr().out
    assert code == 0, capsys.readouterr().err
    assert "data: 16 images, holdout 4" in out
    assert "patients, sample rate" in out
