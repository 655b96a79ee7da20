"""The in-memory form every data source produces."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Grayscale images with their conditions and (optionally) patient IDs.

    images: uint8 array (N, H, W), H == W == the configured resolution.
    labels: float32 array (N, K): one-hot rows for single-label data, multi-hot rows
        (possibly all zero, e.g. "No Finding") for multi-label data.
    class_names: K names, in label-column order.
    multi_label: whether several labels can be set at once.
    patient_ids: str array (N,), or None when the source has no patient IDs.
    splits: str array (N,) of predefined split names (e.g. "train", "val"), or None.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    multi_label: bool
    patient_ids: np.ndarray | None = None
    splits: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 (N, H, W), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (n, len(self.class_names)):
            raise ValueError(
                f"labels must be ({n}, {len(self.class_names)}), got {self.labels.shape}"
            )
        for name in ("patient_ids", "splits"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise ValueError(f"{name} must have {n} entries, got {len(column)}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_patient_ids(self) -> bool:
        return self.patient_ids is not None

    def subset(self, indices: np.ndarray) -> "ImageSet":
        indices = np.asarray(indices, dtype=np.int64)
        return ImageSet(
            images=self.images[indices],
            labels=self.labels[indices],
            class_names=self.class_names,
            multi_label=self.multi_label,
            patient_ids=None if self.patient_ids is None else self.patient_ids[indices],
            splits=None if self.splits is None else self.splits[indices],
        )

    def patient_keys(self) -> np.ndarray:
        """Patient ID per image; each image is its own patient when the source has no IDs."""
        if self.patient_ids is not None:
            return self.patient_ids
        return np.array([f"image-{i}" for i in range(len(self))])
