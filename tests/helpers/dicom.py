"""DICOM files written with pydicom, for the image reader and data source tests."""

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    with_pixel_data: bool = True,
    **attributes: object,
) -> Path:
    """A minimal single- or multi-frame CT file with 16-bit pixels (signed if `pixels` is)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = CTImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "CT"
    dataset.Rows, dataset.Columns = pixels.shape[-2:]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    signed = pixels.dtype.kind == "i"
    dataset.PixelRepresentation = int(signed)
    for name, value in attributes.items():
        setattr(dataset, name, value)
    if with_pixel_data:
        dataset.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path
