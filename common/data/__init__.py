"""Data sources, splits and partitions. Importing this package registers every source."""

from common.data import csv_manifest, folder, medmnist, phantom  # noqa: F401  (registration)
from common.data.imageset import ImageSet
from common.data.sources import SOURCES, DicomOptions, SourceSpec

__all__ = ["SOURCES", "DicomOptions", "ImageSet", "SourceSpec"]
