"""Source `folder`: one sub-folder per class (`path/<class name>/...`) of PNG/JPEG/DICOM files."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.data.images import (
    compile_patient_pattern,
    image_files,
    load_images,
    patient_from_name,
)
from common.data.imageset import ImageSet
from common.data.sources import SOURCES, DicomOptions, SourceSpec
from common.errors import UserError

PATTERN_KEY = "data.folder.patient_pattern"


@dataclass(frozen=True)
class FolderOptions:
    """Config key `data.folder`.

    class_names: default all sub-folders, sorted; when given, only those, in that order.
    patient_pattern: regex with a group `patient`, searched in each file name.
    """

    path: str
    class_names: tuple[str, ...] = ()
    patient_pattern: str = ""

    def __post_init__(self) -> None:
        if not self.path:
            raise UserError("data.folder.path must be set to a folder of class sub-folders")
        if len(set(self.class_names)) != len(self.class_names):
            raise UserError("data.folder.class_names must not repeat a name")
        compile_patient_pattern(self.patient_pattern, PATTERN_KEY)


def load_folder(options: FolderOptions, resolution: int, dicom: DicomOptions) -> ImageSet:
    """Every image under each class folder (recursively), labelled by that folder."""
    root = Path(options.path).expanduser()
    if not root.is_dir():
        raise UserError(f"image folder {root} not found; check data.folder.path")
    folders = sorted(
        entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )
    if not folders:
        raise UserError(
            f"{root} has no class sub-folders; put each class's images in {root}/<class name>/"
        )
    class_names = options.class_names or tuple(folders)
    for name in class_names:
        if name not in folders:
            raise UserError(
                f"data.folder.class_names lists {name!r} but {root} has no such sub-folder; "
                f"sub-folders: {', '.join(folders)}"
            )

    paths: list[Path] = []
    label_index: list[int] = []
    for index, name in enumerate(class_names):
        # An empty class folder is no error: at a site, whether one image is there must not
        # decide whether it replies (a federation with no images at all is refused when planned).
        files = image_files(root / name)
        paths.extend(files)
        label_index.extend([index] * len(files))

    pattern = compile_patient_pattern(options.patient_pattern, PATTERN_KEY)
    patient_ids = None
    if pattern is not None:
        patient_ids = np.array([patient_from_name(pattern, path, PATTERN_KEY) for path in paths])

    labels = np.zeros((len(paths), len(class_names)), dtype=np.float32)
    labels[np.arange(len(paths)), label_index] = 1
    return ImageSet(
        images=load_images(paths, resolution, dicom),
        labels=labels,
        class_names=class_names,
        multi_label=False,
        patient_ids=patient_ids,
    )


def has_patient_ids(options: FolderOptions) -> bool:
    return bool(options.patient_pattern)


SOURCES.register("folder")(
    SourceSpec(
        name="folder",
        options=FolderOptions,
        load=load_folder,
        has_patient_ids=has_patient_ids,
    )
)
