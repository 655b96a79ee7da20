"""Source `medmnist`: a MedMNIST `.npz` file (all splits it holds, concatenated)."""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.data.images import to_resolution
from common.data.imageset import ImageSet
from common.data.sources import SOURCES, DicomOptions, SourceSpec
from common.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class MedmnistOptions:
    """Config key `data.medmnist`.

    path: the .npz file. class_names: default "class-0", "class-1", ...
    multi_label: None = infer (several label columns, as in ChestMNIST, = multi-label).
    """

    path: str
    class_names: tuple[str, ...] = ()
    multi_label: bool | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise UserError("data.medmnist.path must be set to a MedMNIST .npz file")
        if len(set(self.class_names)) != len(self.class_names):
            raise UserError("data.medmnist.class_names must not repeat a name")


def load_medmnist(options: MedmnistOptions, resolution: int, dicom: DicomOptions) -> ImageSet:
    """Read every split in the file; `dicom` is unused (the file holds pixels)."""
    del dicom
    path = Path(options.path).expanduser()
    arrays = _read_npz(path)
    present = [split for split in SPLITS if f"{split}_images" in arrays]
    if not present:
        raise UserError(
            f"{path} has none of the keys {', '.join(f'{s}_images' for s in SPLITS)}; "
            "check data.medmnist.path points at a MedMNIST .npz file"
        )
    for split in present:
        if f"{split}_labels" not in arrays:
            raise UserError(f"{path} has {split}_images but no {split}_labels")

    images = np.concatenate([_gray(arrays[f"{s}_images"], path, s) for s in present])
    labels = [_label_matrix(arrays[f"{s}_labels"], path, s) for s in present]
    for split, split_labels in zip(present, labels, strict=True):
        if len(split_labels) != len(arrays[f"{split}_images"]):
            raise UserError(
                f"{path}: {split}_labels has {len(split_labels)} rows but {split}_images has "
                f"{len(arrays[f'{split}_images'])} images"
            )
    if len({block.shape[1] for block in labels}) > 1:
        raise UserError(f"{path}: the splits' label arrays have different numbers of columns")
    raw_labels = np.concatenate(labels)
    splits = np.concatenate([np.full(len(arrays[f"{s}_images"]), s) for s in present])

    multi_label = options.multi_label
    if multi_label is None:
        multi_label = raw_labels.shape[1] > 1
    if multi_label:
        class_names, onehot = _multi_hot(raw_labels, options.class_names, path)
    else:
        class_names, onehot = _one_hot(raw_labels, options.class_names, path)

    if images.shape[1:] != (resolution, resolution):
        images = np.stack([to_resolution(image, resolution) for image in images])
    return ImageSet(
        images=images,
        labels=onehot,
        class_names=class_names,
        multi_label=multi_label,
        patient_ids=_patient_ids(arrays, present, path),
        splits=splits,
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UserError(f"MedMNIST file {path} not found; check data.medmnist.path")
    try:
        # allow_pickle=False: a data file must never be able to run code.
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UserError(
            f"cannot read {path} as a .npz file ({error}); check data.medmnist.path"
        ) from None


def _gray(images: np.ndarray, path: Path, split: str) -> np.ndarray:
    """uint8 (N, H, W); RGB MedMNIST sets (e.g. PathMNIST) are converted to luma."""
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 4 and images.shape[-1] == 3:
        luma = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        images = np.round(luma)
    if images.ndim != 3:
        raise UserError(
            f"{path}: {split}_images has shape {images.shape}; expected 2-D grayscale or RGB "
            "images (3-D MedMNIST volumes are not supported)"
        )
    if images.dtype != np.uint8:
        images = np.clip(images, 0, 255).astype(np.uint8)
    return images


def _label_matrix(labels: np.ndarray, path: Path, split: str) -> np.ndarray:
    """Labels as a 2-D (N, columns) array; MedMNIST stores single labels as (N, 1)."""
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2:
        raise UserError(f"{path}: {split}_labels has shape {labels.shape}; expected (N, columns)")
    return labels


def _one_hot(
    labels: np.ndarray, names: tuple[str, ...], path: Path
) -> tuple[tuple[str, ...], np.ndarray]:
    if labels.shape[1] != 1:
        raise UserError(
            f"{path} has {labels.shape[1]} label columns but data.medmnist.multi_label is false; "
            "set it to true or leave it unset"
        )
    index = labels[:, 0].astype(np.int64)
    if index.min(initial=0) < 0:
        raise UserError(f"{path} has negative label values; expected class indices")
    if not names:
        names = tuple(f"class-{i}" for i in range(int(index.max(initial=-1)) + 1))
    if index.max(initial=-1) >= len(names):
        raise UserError(
            f"{path} has label value {int(index.max())} but data.medmnist.class_names lists only "
            f"{len(names)} classes; list one name per class (in label order)"
        )
    onehot = np.zeros((len(index), len(names)), dtype=np.float32)
    onehot[np.arange(len(index)), index] = 1
    return names, onehot


def _multi_hot(
    labels: np.ndarray, names: tuple[str, ...], path: Path
) -> tuple[tuple[str, ...], np.ndarray]:
    columns = labels.shape[1]
    if not names:
        names = tuple(f"class-{i}" for i in range(columns))
    if len(names) != columns:
        raise UserError(
            f"{path} has {columns} label columns but data.medmnist.class_names lists "
            f"{len(names)} names; give one name per column"
        )
    if not np.isin(labels, (0, 1)).all():
        raise UserError(
            f"{path} has multi-label values other than 0 and 1; if the labels are class "
            "indices set data.medmnist.multi_label to false"
        )
    return names, labels.astype(np.float32)


def _patient_ids(
    arrays: dict[str, np.ndarray], present: list[str], path: Path
) -> np.ndarray | None:
    keys = [f"{split}_patient_ids" for split in present]
    found = [key for key in keys if key in arrays]
    if not found:
        return None
    if len(found) != len(keys):
        missing = sorted(set(keys) - set(found))
        raise UserError(
            f"{path} has {', '.join(found)} but not {', '.join(missing)}; give patient IDs for "
            "every split or none"
        )
    for split, key in zip(present, keys, strict=True):
        if len(arrays[key]) != len(arrays[f"{split}_images"]):
            raise UserError(
                f"{path}: {key} has {len(arrays[key])} entries but {split}_images has "
                f"{len(arrays[f'{split}_images'])} images"
            )
    return np.concatenate([arrays[key].astype(str) for key in keys])


def write_medmnist(data: ImageSet, path: Path) -> None:
    """`data` as the train split of a MedMNIST-layout .npz (with patient IDs if it has them),
    readable by this source."""
    arrays = {"train_images": data.images, "train_labels": data.labels.astype(np.uint8)}
    if not data.multi_label:
        arrays["train_labels"] = data.labels.argmax(axis=1)[:, None].astype(np.uint8)
    if data.patient_ids is not None:
        arrays["train_patient_ids"] = data.patient_ids
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def has_patient_ids(options: MedmnistOptions) -> bool:
    """Unknown without reading the file (only our own exports have patient IDs): say no."""
    del options
    return False


SOURCES.register("medmnist")(
    SourceSpec(
        name="medmnist",
        options=MedmnistOptions,
        load=load_medmnist,
        has_patient_ids=has_patient_ids,
    )
)
