"""Reading image files (PNG, JPEG, DICOM) as 8-bit grayscale and resizing them."""

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from common.data.dicom import read_dicom
from common.data.sources import DicomOptions
from common.errors import UserError

DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"}) | DICOM_SUFFIXES


def is_dicom(path: Path) -> bool:
    """DICOM by suffix, or by the 'DICM' magic after the 128-byte preamble."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as file:
            file.seek(128)
            return file.read(4) == b"DICM"
    except OSError:
        return False


def read_image(path: Path, dicom: DicomOptions) -> np.ndarray:
    """The image at `path` as a uint8 (H, W) array."""
    path = Path(path)
    if is_dicom(path):
        return read_dicom(path, dicom)
    try:
        with Image.open(path) as image:
            image.load()
            return _to_gray_uint8(image)
    except FileNotFoundError:
        raise UserError(f"image file {path} not found") from None
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(
            f"cannot read image {path}: {error}; check that it is a valid PNG, JPEG or DICOM file"
        ) from None


def _to_gray_uint8(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I"):
        # 16-bit PNGs open as "I;16" (or "I"); converting to "L" would clip at 255 instead
        # of scaling, so map the full 16-bit range onto 8 bits ourselves.
        values = np.asarray(image).astype(np.float64)
        return np.round(np.clip(values, 0, 65535) / 257).astype(np.uint8)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def to_resolution(image: np.ndarray, resolution: int) -> np.ndarray:
    """Centre-crop to a square, then resize to (resolution, resolution) with Lanczos filtering."""
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    height, width = image.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side]
    if side == resolution:
        return np.ascontiguousarray(square, dtype=np.uint8)
    # Lanczos in PIL widens its kernel when downscaling, so it antialiases properly.
    resized = Image.fromarray(square).resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def load_images(paths: Sequence[Path], resolution: int, dicom: DicomOptions) -> np.ndarray:
    """Read and resize many files into a uint8 (N, resolution, resolution) array."""

    def load(path: Path) -> np.ndarray:
        return to_resolution(read_image(path, dicom), resolution)

    # Decoding is mostly I/O and C code that releases the GIL, so threads parallelise it.
    workers = min(32, (os.cpu_count() or 1) + 4)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        images = list(pool.map(load, paths))
    finally:
        # After an error, report it now instead of first decoding every remaining file.
        pool.shutdown(cancel_futures=True)
    if not images:
        return np.zeros((0, resolution, resolution), dtype=np.uint8)
    return np.stack(images)


def image_files(folder: Path) -> list[Path]:
    """PNG/JPEG/DICOM files under `folder` (recursive, sorted); hidden files are skipped."""
    files = []
    for path in folder.rglob("*"):
        # Skip hidden entries such as macOS "._x.png" resource forks, which are not images.
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        suffix = path.suffix.lower()
        if path.is_file() and (suffix in IMAGE_SUFFIXES or (not suffix and is_dicom(path))):
            files.append(path)
    return sorted(files)


def compile_patient_pattern(pattern: str, key: str) -> re.Pattern[str] | None:
    """The regex of config key `key` (None when empty); it must have a group `patient`."""
    if not pattern:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise UserError(f"{key} is not a valid regular expression: {error}") from None
    if "patient" not in compiled.groupindex:
        raise UserError(
            f"{key} must have a named group `patient`, e.g. ^(?P<patient>\\d+)_\\d+; "
            f"got {pattern!r}"
        )
    return compiled


def patient_from_name(pattern: re.Pattern[str], path: Path, key: str) -> str:
    """The `patient` group of `pattern` searched in the file name of `path`."""
    match = pattern.search(path.name)
    if match is None or not match.group("patient"):
        raise UserError(
            f"file name {path.name} ({path}) does not match {key} {pattern.pattern!r}; "
            "fix the pattern or rename the file"
        )
    return match.group("patient")
