"""DICOM pixel data -> 8-bit grayscale: modality LUT, then window / VOI LUT, then inversion."""

import struct
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing

from common.data.sources import DicomOptions
from common.errors import UserError

PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# What pydicom raises, depending on where parsing or decoding trips, for malformed files.
MALFORMED = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    NotImplementedError,
    RuntimeError,
    EOFError,
    OSError,
    struct.error,
)


def read_dicom(path: Path, options: DicomOptions) -> np.ndarray:
    """The single-frame grayscale DICOM at `path` as a uint8 (H, W) array."""
    path = Path(path)
    _check_window_options(options)
    dataset = _read_dataset(path)
    if not any(keyword in dataset for keyword in PIXEL_DATA_KEYWORDS):
        raise UserError(
            f"DICOM file {path} has no pixel data (e.g. a report or DICOMDIR); remove it"
        )
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise UserError(
            f"DICOM file {path} has {frames} frames: multi-frame DICOM is not supported; "
            "export single frames"
        )
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise UserError(
            f"DICOM file {path} is a colour image (SamplesPerPixel={samples}); only grayscale "
            "DICOM is supported: convert it to grayscale or remove it"
        )
    try:
        stored = dataset.pixel_array
    except MALFORMED as error:
        raise UserError(
            f"cannot decode the pixel data of DICOM file {path}: {error}; the file may be "
            "corrupt, or its compression needs an extra decoder (e.g. pip install pylibjpeg)"
        ) from None
    if stored.ndim != 2:
        raise UserError(f"DICOM file {path} has pixel data of shape {stored.shape}; expected 2-D")

    values = apply_modality_lut(stored, dataset).astype(np.float64)  # e.g. stored -> HU
    image = _to_uint8(values, dataset, options, path)
    if dataset.get("PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
        image = 255 - image  # MONOCHROME1 shows low values bright; we want bone bright
    return image


def _check_window_options(options: DicomOptions) -> None:
    if (options.window_center is None) != (options.window_width is None):
        raise UserError(
            "data.dicom.window_center and data.dicom.window_width must be set together "
            "(e.g. 40 and 80 for a brain CT window) or both left unset"
        )
    if options.window_width is not None and options.window_width <= 0:
        raise UserError(f"data.dicom.window_width must be > 0, got {options.window_width}")


def _read_dataset(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path)
    except FileNotFoundError:
        raise UserError(f"DICOM file {path} not found") from None
    except InvalidDicomError:
        pass  # no 128-byte preamble + 'DICM': maybe an older raw dataset, retry below
    except MALFORMED as error:
        raise UserError(f"DICOM file {path} is corrupt or not DICOM: {error}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # forced parsing of non-DICOM bytes warns a lot
            dataset = pydicom.dcmread(path, force=True)
    except MALFORMED as error:
        raise UserError(f"file {path} is not a readable DICOM file: {error}") from None
    if not any(keyword in dataset for keyword in PIXEL_DATA_KEYWORDS):
        raise UserError(f"file {path} is not a DICOM file or is corrupt; remove or replace it")
    return dataset


def _to_uint8(
    values: np.ndarray, dataset: Dataset, options: DicomOptions, path: Path
) -> np.ndarray:
    if options.window_center is not None:
        # LINEAR_EXACT: center 40 / width 80 maps exactly [0, 80] HU onto [0, 255].
        return _window(values, options.window_center, options.window_width, "LINEAR_EXACT")
    if options.use_voi_lut and dataset.get("VOILUTSequence"):
        try:
            mapped = apply_voi_lut(values, dataset, prefer_lut=True)
            # Scale by the LUT's actual output range: the bit depth its descriptor
            # declares is often wrong in practice.
            entries, first = dataset.VOILUTSequence[0].LUTDescriptor[:2]
            inputs = np.arange(first, first + (entries or 65536))
            table = apply_voi_lut(inputs, dataset, prefer_lut=True)
        except MALFORMED as error:
            raise UserError(
                f"DICOM file {path} has an unusable VOI LUT ({error}); set "
                "data.dicom.window_center/window_width or data.dicom.use_voi_lut=false"
            ) from None
        return _scale(mapped.astype(np.float64), float(table.min()), float(table.max()))
    if options.use_voi_lut and _first(dataset.get("WindowCenter")) is not None:
        center = _first(dataset.WindowCenter)
        width = _first(dataset.get("WindowWidth"))
        if width is not None and width > 0:
            function = str(dataset.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
            try:
                return _window(values, center, width, function)
            except ValueError as error:
                raise UserError(
                    f"DICOM file {path} has an unusable window ({error}); set "
                    "data.dicom.window_center/window_width or data.dicom.use_voi_lut=false"
                ) from None
    return _scale(values, float(values.min()), float(values.max()))


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    # pydicom maps onto the range of the stored bits; an 8-bit unsigned stand-in
    # dataset makes that range exactly [0, 255].
    window = Dataset()
    window.PhotometricInterpretation = "MONOCHROME2"
    window.BitsStored = 8
    window.PixelRepresentation = 0
    window.WindowCenter = float(center)
    window.WindowWidth = float(width)
    window.VOILUTFunction = function
    return _scale(apply_windowing(values, window), 0.0, 255.0)


def _first(value: object) -> float | None:
    """First value of a possibly multi-valued DICOM number; None when absent or empty."""
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if value else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values - low) / (high - low) * 255
    return np.round(np.clip(scaled, 0, 255)).astype(np.uint8)
