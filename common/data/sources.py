"""Registry of data sources. Each source module registers a SourceSpec under its name."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.data.imageset import ImageSet
from common.registry import Registry


@dataclass(frozen=True)
class DicomOptions:
    """How DICOM pixel data becomes 8-bit grayscale (config key `data.dicom`).

    With window_center/window_width set, that window is applied (e.g. brain CT: 40/80);
    otherwise the file's VOI LUT or window is used if present, else min-max scaling.
    """

    window_center: float | None = None
    window_width: float | None = None
    use_voi_lut: bool = True


@dataclass(frozen=True)
class SourceSpec:
    """options: frozen dataclass parsed from `data.<name>`; load(options, resolution, dicom)."""

    name: str
    options: type
    load: Callable[[Any, int, DicomOptions], ImageSet]
    has_patient_ids: Callable[[Any], bool]


SOURCES: Registry[SourceSpec] = Registry("data source")
