"""Source `csv`: a manifest CSV of image paths, labels and patient IDs.

The defaults read NIH ChestX-ray14's `Data_Entry_2017.csv` as shipped.
"""

import csv
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.data.images import compile_patient_pattern, load_images, patient_from_name
from common.data.imageset import ImageSet
from common.data.sources import SOURCES, DicomOptions, SourceSpec
from common.errors import UserError

PATTERN_KEY = "data.csv.patient_pattern"


@dataclass(frozen=True)
class CsvOptions:
    """Config key `data.csv`.

    image_root: default the CSV's folder; images are found directly under it or anywhere below.
    no_finding: label meaning "none of the classes" (all-zero row; multi-label only).
    classes: default the sorted labels seen, without no_finding.
    patient_pattern: regex with a group `patient` on the file name; when set it is used
        instead of patient_column. patient_column "" = no patient IDs.
    limit: 0 = all rows, else only the first `limit` rows (quick runs).
    """

    path: str
    image_root: str = ""
    path_column: str = "Image Index"
    label_column: str = "Finding Labels"
    label_separator: str = "|"
    no_finding: str = "No Finding"
    multi_label: bool = True
    classes: tuple[str, ...] = ()
    patient_column: str = "Patient ID"
    patient_pattern: str = ""
    limit: int = 0

    def __post_init__(self) -> None:
        if not self.path:
            raise UserError("data.csv.path must be set to the manifest CSV file")
        for key in ("path_column", "label_column"):
            if not getattr(self, key):
                raise UserError(f"data.csv.{key} must name a column of the CSV")
        if self.multi_label and not self.label_separator:
            raise UserError("data.csv.label_separator must be set for multi-label data (e.g. '|')")
        if self.limit < 0:
            raise UserError(f"data.csv.limit must be >= 0 (0 = all rows), got {self.limit}")
        if len(set(self.classes)) != len(self.classes):
            raise UserError("data.csv.classes must not repeat a name")
        if self.multi_label and self.no_finding and self.no_finding in self.classes:
            raise UserError(
                f"data.csv.classes must not include the no-finding label {self.no_finding!r}; "
                "it stands for an all-zero label row"
            )
        compile_patient_pattern(self.patient_pattern, PATTERN_KEY)


def load_csv(options: CsvOptions, resolution: int, dicom: DicomOptions) -> ImageSet:
    """The images the manifest lists, with their labels and patient IDs."""
    csv_path = Path(options.path).expanduser()
    if not csv_path.is_file():
        raise UserError(f"manifest CSV {csv_path} not found; check data.csv.path")
    root = Path(options.image_root).expanduser() if options.image_root else csv_path.parent
    if not root.is_dir():
        raise UserError(f"image folder {root} not found; check data.csv.image_root")

    pattern = compile_patient_pattern(options.patient_pattern, PATTERN_KEY)
    patient_column = "" if pattern is not None else options.patient_column
    rows = _read_rows(csv_path, options, patient_column)

    row_labels = [_parse_labels(row, line, csv_path, options) for line, row in rows]
    classes = options.classes or tuple(sorted({name for names in row_labels for name in names}))
    if not classes:
        raise UserError(
            f"{csv_path} has no labels other than {options.no_finding!r} in column "
            f"{options.label_column!r}; check data.csv.label_column"
        )
    labels = np.zeros((len(rows), len(classes)), dtype=np.float32)
    column_of = {name: i for i, name in enumerate(classes)}
    for i, ((line, _), names) in enumerate(zip(rows, row_labels, strict=True)):
        for name in names:
            if name not in column_of:
                raise UserError(
                    f"{csv_path} line {line}: label {name!r} (column {options.label_column!r}) "
                    "is not in data.csv.classes; add it there or leave data.csv.classes empty"
                )
            labels[i, column_of[name]] = 1

    finder = _ImageFinder(root)
    paths = [finder.find(row[options.path_column] or "", line, csv_path) for line, row in rows]
    if pattern is not None:
        patient_ids = np.array([patient_from_name(pattern, path, PATTERN_KEY) for path in paths])
    elif patient_column:
        patient_ids = np.array(
            [_patient(row, line, csv_path, patient_column) for line, row in rows]
        )
    else:
        patient_ids = None

    return ImageSet(
        images=load_images(paths, resolution, dicom),
        labels=labels,
        class_names=classes,
        multi_label=options.multi_label,
        patient_ids=patient_ids,
    )


def _read_rows(
    csv_path: Path, options: CsvOptions, patient_column: str
) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for the first `limit` data rows; checks the needed columns exist."""
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        with open(csv_path, encoding="utf-8-sig", newline="") as file:
            reader = csv.DictReader(file)
            columns = reader.fieldnames or []
            for key in ("path_column", "label_column"):
                _check_column(getattr(options, key), f"data.csv.{key}", columns, csv_path)
            if patient_column:
                _check_column(
                    patient_column,
                    "data.csv.patient_column",
                    columns,
                    csv_path,
                    hint="; set data.csv.patient_column to '' if the CSV has none",
                )
            limited = itertools.islice(reader, options.limit or None)
            rows = [(reader.line_num, row) for row in limited]
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"cannot parse manifest CSV {csv_path}: {error}") from None
    if not rows:
        raise UserError(f"manifest CSV {csv_path} has no data rows")
    return rows


def _check_column(
    column: str, key: str, columns: list[str], csv_path: Path, hint: str = ""
) -> None:
    if column not in columns:
        available = ", ".join(repr(c) for c in columns) or "none"
        raise UserError(
            f"{csv_path} has no column {column!r} (set by {key}); its columns are: "
            f"{available}{hint}"
        )


def _parse_labels(row: dict[str, str], line: int, csv_path: Path, options: CsvOptions) -> list[str]:
    value = (row[options.label_column] or "").strip()
    if not value:
        hint = f"; write {options.no_finding!r} for none" if options.multi_label else ""
        raise UserError(
            f"{csv_path} line {line}: empty label in column {options.label_column!r}{hint}"
        )
    if not options.multi_label:
        return [value]
    names = [name.strip() for name in value.split(options.label_separator)]
    return [name for name in names if name and name != options.no_finding]


def _patient(row: dict[str, str], line: int, csv_path: Path, column: str) -> str:
    value = (row[column] or "").strip()
    if not value:
        raise UserError(f"{csv_path} line {line}: empty patient ID in column {column!r}")
    return value


class _ImageFinder:
    """Finds a listed file directly under the root, else by name anywhere below it.

    ChestX-ray14 ships its images in images_001/images/... sub-folders, so a file name
    alone does not locate it; the index of all files is built once, on first need.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: dict[str, list[Path]] | None = None

    def find(self, name: str, line: int, csv_path: Path) -> Path:
        name = name.strip()
        if not name:
            raise UserError(f"{csv_path} line {line}: empty image path")
        direct = self.root / name
        if direct.is_file():
            return direct
        matches = self._by_name().get(Path(name).name, [])
        if len(matches) > 1:
            raise UserError(
                f"{csv_path} line {line}: image {name} matches several files under {self.root} "
                f"({', '.join(map(str, matches[:3]))}); set data.csv.image_root to the right folder"
            )
        if not matches:
            raise UserError(
                f"{csv_path} line {line}: image {name} not found under {self.root} or its "
                "sub-folders; check data.csv.image_root and that the images are extracted"
            )
        return matches[0]

    def _by_name(self) -> dict[str, list[Path]]:
        if self._index is None:
            self._index = {}
            # os.walk is much faster than Path.rglob on folders of ~100k files.
            for folder, _, files in os.walk(self.root):
                for file in files:
                    self._index.setdefault(file, []).append(Path(folder) / file)
        return self._index


def has_patient_ids(options: CsvOptions) -> bool:
    return bool(options.patient_column or options.patient_pattern)


SOURCES.register("csv")(
    SourceSpec(name="csv", options=CsvOptions, load=load_csv, has_patient_ids=has_patient_ids)
)
