"""The medmnist, folder and csv data sources, read from files built in tmp_path."""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import common.data.csv_manifest
import common.data.folder
import common.data.medmnist
from common.data.csv_manifest import CsvOptions
from common.data.folder import FolderOptions
from common.data.medmnist import MedmnistOptions
from common.data.sources import SOURCES, DicomOptions
from common.errors import UserError
from tests.helpers.dicom import write_dicom

DICOM = DicomOptions()


def write_png(path: Path, value: int, size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)
    return path


def write_gradient_dicom(path: Path, size: int = 40) -> Path:
    """A grayscale DICOM with a horizontal gradient."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_dicom(path, np.tile(np.linspace(0, 4000, size).astype(np.uint16), (size, 1)))


# ---- medmnist --------------------------------------------------------------------------


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def medmnist_arrays(rng: np.random.Generator, count: int, columns: int = 1) -> dict:
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    if columns == 1:
        labels = rng.integers(0, 3, size=(count, 1))
    else:
        labels = rng.integers(0, 2, size=(count, columns))
    return {"images": images, "labels": labels}


def npz_splits(rng: np.random.Generator, counts: dict[str, int], columns: int = 1) -> dict:
    arrays = {}
    for split, count in counts.items():
        for key, value in medmnist_arrays(rng, count, columns).items():
            arrays[f"{split}_{key}"] = value
    return arrays


def test_medmnist_concatenates_splits_and_resizes(tmp_path: Path) -> None:
    arrays = npz_splits(np.random.default_rng(0), {"train": 6, "val": 2, "test": 3})
    arrays["train_labels"][:3, 0] = [0, 1, 2]  # make sure every class occurs
    path = write_npz(tmp_path / "organamnist.npz", **arrays)
    spec = SOURCES.get("medmnist")

    data = spec.load(MedmnistOptions(path=str(path)), 32, DICOM)

    assert data.images.shape == (11, 32, 32)
    assert data.splits.tolist() == ["train"] * 6 + ["val"] * 2 + ["test"] * 3
    assert data.class_names == ("class-0", "class-1", "class-2")
    assert not data.multi_label
    np.testing.assert_array_equal(data.labels.sum(axis=1), np.ones(11))
    expected_index = np.concatenate([arrays[f"{s}_labels"][:, 0] for s in ("train", "val", "test")])
    np.testing.assert_array_equal(data.labels.argmax(axis=1), expected_index)
    assert data.patient_ids is None
    assert spec.has_patient_ids(MedmnistOptions(path=str(path))) is False


def test_medmnist_keeps_native_resolution_and_reads_patient_ids(tmp_path: Path) -> None:
    arrays = npz_splits(np.random.default_rng(1), {"train": 4, "test": 2})
    arrays["train_patient_ids"] = np.array(["p1", "p1", "p2", "p3"])
    arrays["test_patient_ids"] = np.array(["p4", "p4"])
    path = write_npz(tmp_path / "export.npz", **arrays)

    data = SOURCES.get("medmnist").load(MedmnistOptions(path=str(path)), 28, DICOM)

    np.testing.assert_array_equal(data.images[:4], arrays["train_images"])
    assert data.patient_ids.tolist() == ["p1", "p1", "p2", "p3", "p4", "p4"]
    assert data.splits.tolist() == ["train"] * 4 + ["test"] * 2


def test_medmnist_multi_label_is_detected_from_label_columns(tmp_path: Path) -> None:
    arrays = npz_splits(np.random.default_rng(2), {"train": 5}, columns=4)
    path = write_npz(tmp_path / "chestmnist.npz", **arrays)
    names = ("atelectasis", "cardiomegaly", "effusion", "infiltration")

    data = SOURCES.get("medmnist").load(
        MedmnistOptions(path=str(path), class_names=names), 28, DICOM
    )

    assert data.multi_label
    assert data.class_names == names
    np.testing.assert_array_equal(data.labels, arrays["train_labels"].astype(np.float32))


def test_medmnist_missing_file_names_it_and_the_key(tmp_path: Path) -> None:
    options = MedmnistOptions(path=str(tmp_path / "nope.npz"))

    with pytest.raises(UserError) as error:
        SOURCES.get("medmnist").load(options, 28, DICOM)

    assert "nope.npz" in str(error.value)
    assert "data.medmnist.path" in str(error.value)


def test_medmnist_without_image_keys_is_rejected(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "odd.npz", x=np.zeros(3))

    with pytest.raises(UserError, match="train_images") as error:
        SOURCES.get("medmnist").load(MedmnistOptions(path=str(path)), 28, DICOM)

    assert "odd.npz" in str(error.value)


def test_medmnist_images_without_labels_are_rejected(tmp_path: Path) -> None:
    arrays = npz_splits(np.random.default_rng(3), {"train": 2, "val": 2})
    del arrays["val_labels"]
    path = write_npz(tmp_path / "partial.npz", **arrays)

    with pytest.raises(UserError, match="no val_labels"):
        SOURCES.get("medmnist").load(MedmnistOptions(path=str(path)), 28, DICOM)


def test_medmnist_label_out_of_range_of_class_names_is_rejected(tmp_path: Path) -> None:
    arrays = npz_splits(np.random.default_rng(4), {"train": 3})
    arrays["train_labels"][:, 0] = [0, 1, 2]
    path = write_npz(tmp_path / "x.npz", **arrays)
    options = MedmnistOptions(path=str(path), class_names=("a", "b"))

    with pytest.raises(UserError, match="data.medmnist.class_names") as error:
        SOURCES.get("medmnist").load(options, 28, DICOM)

    assert "x.npz" in str(error.value) and "label value 2" in str(error.value)


def test_medmnist_path_must_be_set() -> None:
    with pytest.raises(UserError, match="data.medmnist.path"):
        MedmnistOptions(path="")


# ---- folder ----------------------------------------------------------------------------


def make_class_folders(root: Path) -> Path:
    write_png(root / "normal" / "p01_a.png", 10)
    write_png(root / "normal" / "scan2" / "p02_a.png", 20)  # nested inside the class folder
    write_gradient_dicom(root / "tumour" / "p01_b.dcm")
    write_png(root / "tumour" / "p03_a.jpg", 200)
    (root / "tumour" / "notes.txt").write_text("not an image")
    return root


def test_folder_labels_images_by_class_sub_folder(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "data")
    spec = SOURCES.get("folder")
    options = FolderOptions(path=str(root))

    data = spec.load(options, 32, DICOM)

    assert data.class_names == ("normal", "tumour")
    assert data.images.shape == (4, 32, 32)
    assert not data.multi_label
    np.testing.assert_array_equal(data.labels.argmax(axis=1), [0, 0, 1, 1])
    assert data.patient_ids is None
    assert not spec.has_patient_ids(options)


def test_folder_patient_pattern_gives_patient_ids(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "data")
    options = FolderOptions(path=str(root), patient_pattern=r"^(?P<patient>p\d+)_")

    data = SOURCES.get("folder").load(options, 32, DICOM)

    assert SOURCES.get("folder").has_patient_ids(options)
    assert data.patient_ids.tolist() == ["p01", "p02", "p01", "p03"]


def test_folder_class_names_option_selects_and_orders(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "data")

    data = SOURCES.get("folder").load(
        FolderOptions(path=str(root), class_names=("tumour",)), 32, DICOM
    )

    assert data.class_names == ("tumour",)
    assert len(data) == 2


def test_folder_file_not_matching_patient_pattern_is_named(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "data")
    write_png(root / "normal" / "anonymous.png", 50)
    options = FolderOptions(path=str(root), patient_pattern=r"^(?P<patient>p\d+)_")

    with pytest.raises(UserError, match="anonymous.png") as error:
        SOURCES.get("folder").load(options, 32, DICOM)

    assert "data.folder.patient_pattern" in str(error.value)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("missing", "data.folder.path"),
        ("no-class-folders", "no class sub-folders"),
    ],
)
def test_folder_layout_errors_name_the_problem(tmp_path: Path, layout: str, expected: str) -> None:
    root = tmp_path / "data"
    if layout == "no-class-folders":
        write_png(root / "loose.png", 1)

    with pytest.raises(UserError, match=expected) as error:
        SOURCES.get("folder").load(FolderOptions(path=str(root)), 32, DICOM)

    assert str(root) in str(error.value)


def test_an_empty_class_folder_is_a_class_without_images(tmp_path: Path) -> None:
    # At a site, one image more or less must not decide whether the data can be read.
    root = tmp_path / "data"
    write_png(root / "full" / "x.png", 1)
    (root / "empty").mkdir()

    data = SOURCES.get("folder").load(FolderOptions(path=str(root)), 32, DICOM)

    assert data.class_names == ("empty", "full")
    assert data.labels.sum(axis=0).tolist() == [0, 1]


@pytest.mark.parametrize("pattern", [r"(unclosed", r"^(\d+)_"])
def test_folder_invalid_patient_pattern_names_the_key(pattern: str) -> None:
    with pytest.raises(UserError, match="data.folder.patient_pattern"):
        FolderOptions(path="x", patient_pattern=pattern)


# ---- csv (ChestX-ray14 layout) ---------------------------------------------------------

CHESTXRAY_COLUMNS = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age"]
CHESTXRAY_ROWS = [
    ("00000001_000.png", "Cardiomegaly", "0", "1", "58"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", "1", "1", "58"),
    ("00000002_000.png", "No Finding", "0", "2", "81"),
    ("00000003_000.png", "Hernia|Effusion", "0", "3", "74"),
]


def write_chestxray(root: Path, rows: list[tuple] = CHESTXRAY_ROWS) -> Path:
    """Data_Entry_2017.csv next to images_001/images/*.png, as the NIH download unpacks."""
    for i, row in enumerate(rows):
        write_png(root / "images_001" / "images" / row[0], 30 * i, size=64)
    manifest = root / "Data_Entry_2017.csv"
    with open(manifest, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CHESTXRAY_COLUMNS)
        writer.writerows(rows)
    return manifest


def test_csv_reads_chestxray14_layout_with_defaults(tmp_path: Path) -> None:
    manifest = write_chestxray(tmp_path / "nih")
    spec = SOURCES.get("csv")
    options = CsvOptions(path=str(manifest))

    data = spec.load(options, 32, DICOM)

    assert data.multi_label
    assert data.class_names == ("Cardiomegaly", "Effusion", "Emphysema", "Hernia")
    np.testing.assert_array_equal(
        data.labels, [[1, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 1]]
    )
    assert data.patient_ids.tolist() == ["1", "1", "2", "3"]
    assert data.images.shape == (4, 32, 32)
    np.testing.assert_array_equal(data.images[:, 0, 0], [0, 30, 60, 90])
    assert spec.has_patient_ids(options)


def test_csv_patient_pattern_on_file_names(tmp_path: Path) -> None:
    manifest = write_chestxray(tmp_path / "nih")
    options = CsvOptions(path=str(manifest), patient_pattern=r"^(?P<patient>\d+)_\d+")

    data = SOURCES.get("csv").load(options, 32, DICOM)

    assert data.patient_ids.tolist() == ["00000001", "00000001", "00000002", "00000003"]


def test_csv_without_patient_ids_limit_and_explicit_classes(tmp_path: Path) -> None:
    manifest = write_chestxray(tmp_path / "nih")
    options = CsvOptions(
        path=str(manifest),
        patient_column="",
        classes=("Emphysema", "Cardiomegaly"),
        limit=2,
    )

    data = SOURCES.get("csv").load(options, 32, DICOM)

    assert not SOURCES.get("csv").has_patient_ids(options)
    assert data.patient_ids is None
    assert data.class_names == ("Emphysema", "Cardiomegaly")
    np.testing.assert_array_equal(data.labels, [[0, 1], [1, 1]])


def test_csv_single_label_mode_is_one_hot(tmp_path: Path) -> None:
    rows = [("a.png", "benign", "0", "7", "1"), ("b.png", "malignant", "0", "8", "1")]
    manifest = write_chestxray(tmp_path / "d", rows)
    options = CsvOptions(path=str(manifest), multi_label=False, image_root=str(tmp_path / "d"))

    data = SOURCES.get("csv").load(options, 32, DICOM)

    assert not data.multi_label
    assert data.class_names == ("benign", "malignant")
    np.testing.assert_array_equal(data.labels, [[1, 0], [0, 1]])


def test_csv_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data.csv.path") as error:
        SOURCES.get("csv").load(CsvOptions(path=str(tmp_path / "Data.csv")), 32, DICOM)

    assert "Data.csv" in str(error.value)


def test_csv_missing_column_lists_available_columns(tmp_path: Path) -> None:
    manifest = write_chestxray(tmp_path / "nih")
    options = CsvOptions(path=str(manifest), label_column="Diagnosis")

    with pytest.raises(UserError, match="'Diagnosis'") as error:
        SOURCES.get("csv").load(options, 32, DICOM)

    message = str(error.value)
    assert "data.csv.label_column" in message
    assert "'Finding Labels'" in message and "'Patient Age'" in message


def test_csv_missing_image_names_it_and_the_root(tmp_path: Path) -> None:
    manifest = write_chestxray(tmp_path / "nih")
    (tmp_path / "nih" / "images_001" / "images" / "00000002_000.png").unlink()

    with pytest.raises(UserError, match="00000002_000.png") as error:
        SOURCES.get("csv").load(CsvOptions(path=str(manifest)), 32, DICOM)

    assert str(tmp_path / "nih") in str(error.value)


def test_csv_label_not_in_classes_names_row_and_label(tmp_path: Path) -> None:
    manifest = write_chestxray(tmp_path / "nih")
    options = CsvOptions(path=str(manifest), classes=("Cardiomegaly",))

    with pytest.raises(UserError, match="'Emphysema'") as error:
        SOURCES.get("csv").load(options, 32, DICOM)

    assert "line 3" in str(error.value)
    assert "data.csv.classes" in str(error.value)


def test_csv_options_are_validated() -> None:
    with pytest.raises(UserError, match="data.csv.path"):
        CsvOptions(path="")
    with pytest.raises(UserError, match="data.csv.limit"):
        CsvOptions(path="x.csv", limit=-1)


def test_sources_are_registered() -> None:
    assert {"medmnist", "folder", "csv"} <= set(SOURCES.names())
    assert SOURCES.get("csv").load is common.data.csv_manifest.load_csv
    assert SOURCES.get("folder").options is common.data.folder.FolderOptions
    assert SOURCES.get("medmnist").options is common.data.medmnist.MedmnistOptions
