"""Reading PNG/JPEG/DICOM files into uint8 grayscale, and resizing."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data.dicom import read_dicom
from common.data.images import load_images, read_image, to_resolution
from common.data.sources import DicomOptions
from common.errors import UserError
from tests.helpers.dicom import write_dicom

BRAIN_WINDOW = DicomOptions(window_center=40, window_width=80)


def gradient(rows: int = 8, columns: int = 8, high: int = 4000) -> np.ndarray:
    return np.linspace(0, high, rows * columns).reshape(rows, columns).astype(np.uint16)


# ---- DICOM -----------------------------------------------------------------------------


def test_ct_window_maps_known_hounsfield_units_after_rescale(tmp_path: Path) -> None:
    # HU = 2 * stored - 1024, so these stored values are -1024, 0, 20, 40, 60, 80, 1000 HU.
    stored = np.array([[0, 512, 522, 532], [542, 552, 1012, 512]], dtype=np.uint16)
    path = write_dicom(tmp_path / "ct.dcm", stored, RescaleSlope=2, RescaleIntercept=-1024)

    image = read_dicom(path, BRAIN_WINDOW)

    # Brain window 40/80 spans 0..80 HU: 0 HU -> 0, 40 HU -> mid grey, 80 HU -> 255.
    expected = np.array([[0, 0, 64, 128], [191, 255, 255, 0]])
    assert image.dtype == np.uint8
    assert np.abs(image.astype(int) - expected).max() <= 1


def test_window_from_the_file_is_used_unless_disabled(tmp_path: Path) -> None:
    stored = np.array([[0, 100, 200, 300]], dtype=np.uint16)
    path = write_dicom(tmp_path / "x.dcm", stored, WindowCenter=100, WindowWidth=100)

    windowed = read_dicom(path, DicomOptions())
    min_max = read_dicom(path, DicomOptions(use_voi_lut=False))

    assert windowed[0, 0] == 0 and windowed[0, 2] == 255 and windowed[0, 3] == 255
    assert abs(int(windowed[0, 1]) - 128) <= 2
    np.testing.assert_array_equal(min_max[0], [0, 85, 170, 255])


def test_min_max_scaling_without_any_window(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "x.dcm", gradient())

    image = read_dicom(path, DicomOptions())

    assert image.min() == 0 and image.max() == 255
    assert np.all(np.diff(image.ravel().astype(int)) >= 0)


def test_monochrome1_is_inverted_so_high_values_are_bright(tmp_path: Path) -> None:
    pixels = gradient()
    normal = read_dicom(write_dicom(tmp_path / "m2.dcm", pixels), DicomOptions())
    inverted_file = write_dicom(tmp_path / "m1.dcm", pixels, photometric="MONOCHROME1")

    inverted = read_dicom(inverted_file, DicomOptions())

    np.testing.assert_array_equal(inverted, 255 - normal)


def test_multi_frame_dicom_is_rejected_naming_the_file(tmp_path: Path) -> None:
    frames = np.stack([gradient(), gradient()])
    path = write_dicom(tmp_path / "cine.dcm", frames, NumberOfFrames=2)

    with pytest.raises(UserError, match="multi-frame") as error:
        read_dicom(path, DicomOptions())

    assert "cine.dcm" in str(error.value)
    assert "export single frames" in str(error.value)


def test_dicom_without_pixel_data_is_rejected(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "report.dcm", gradient(), with_pixel_data=False)

    with pytest.raises(UserError, match="no pixel data") as error:
        read_dicom(path, DicomOptions())

    assert "report.dcm" in str(error.value)


def test_colour_dicom_is_rejected(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "rgb.dcm", gradient(), SamplesPerPixel=3)

    with pytest.raises(UserError, match="SamplesPerPixel=3") as error:
        read_dicom(path, DicomOptions())

    assert "rgb.dcm" in str(error.value)


@pytest.mark.parametrize("content", [b"", b"not a dicom file at all", bytes(range(256)) * 3])
def test_corrupt_dicom_is_rejected_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.dcm"
    path.write_bytes(content)

    with pytest.raises(UserError) as error:
        read_dicom(path, DicomOptions())

    assert "broken.dcm" in str(error.value)


def test_truncated_pixel_data_is_rejected(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "short.dcm", gradient())
    path.write_bytes(path.read_bytes()[:-40])

    with pytest.raises(UserError) as error:
        read_dicom(path, DicomOptions())

    assert "short.dcm" in str(error.value)


def test_window_center_without_width_names_the_key(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "x.dcm", gradient())

    with pytest.raises(UserError, match="data.dicom.window_width"):
        read_dicom(path, DicomOptions(window_center=40))


def test_read_image_detects_dicom_without_suffix_by_magic(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "IM0001", gradient())

    image = read_image(path, DicomOptions())

    np.testing.assert_array_equal(image, read_dicom(path, DicomOptions()))


# ---- PNG / JPEG ------------------------------------------------------------------------


def test_8_bit_png_is_read_unchanged(tmp_path: Path) -> None:
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(pixels).save(tmp_path / "x.png")

    image = read_image(tmp_path / "x.png", DicomOptions())

    np.testing.assert_array_equal(image, pixels)


def test_16_bit_png_is_scaled_to_8_bit(tmp_path: Path) -> None:
    pixels = np.array([[0, 257 * 100, 65535, 32896]], dtype=np.uint16)
    Image.fromarray(pixels).save(tmp_path / "x16.png")

    image = read_image(tmp_path / "x16.png", DicomOptions())

    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, [[0, 100, 255, 128]])


def test_rgb_jpeg_is_converted_to_grayscale(tmp_path: Path) -> None:
    Image.new("RGB", (16, 12), (200, 200, 200)).save(tmp_path / "x.jpg")

    image = read_image(tmp_path / "x.jpg", DicomOptions())

    assert image.shape == (12, 16)
    assert np.abs(image.astype(int) - 200).max() <= 2


@pytest.mark.parametrize("name", ["broken.png", "missing.png"])
def test_unreadable_image_is_rejected_naming_the_file(tmp_path: Path, name: str) -> None:
    if name == "broken.png":
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    with pytest.raises(UserError) as error:
        read_image(tmp_path / name, DicomOptions())

    assert name in str(error.value)


# ---- resizing --------------------------------------------------------------------------


def test_to_resolution_centre_crops_non_square_images() -> None:
    image = np.zeros((40, 60), dtype=np.uint8)
    image[:, 10:50] = 200  # exactly the centred 40 x 40 square

    resized = to_resolution(image, 32)

    assert resized.shape == (32, 32) and resized.dtype == np.uint8
    assert np.all(resized == 200)


def test_to_resolution_antialiases_when_downscaling() -> None:
    checkerboard = (np.indices((128, 128)).sum(axis=0) % 2 * 255).astype(np.uint8)

    resized = to_resolution(checkerboard, 32)

    # Without a low-pass filter, sampling a 1-pixel checkerboard would give 0s and 255s.
    assert np.abs(resized.astype(int) - 128).max() <= 3


def test_to_resolution_upscales_and_keeps_matching_size() -> None:
    image = np.full((28, 28), 77, dtype=np.uint8)

    assert to_resolution(image, 32).shape == (32, 32)
    np.testing.assert_array_equal(to_resolution(image, 28), image)


def test_load_images_keeps_order(tmp_path: Path) -> None:
    paths = []
    for value in range(10):
        path = tmp_path / f"{value}.png"
        Image.fromarray(np.full((20, 20), value * 20, dtype=np.uint8)).save(path)
        paths.append(path)

    images = load_images(paths, 16, DicomOptions())

    assert images.shape == (10, 16, 16)
    np.testing.assert_array_equal(images[:, 0, 0], np.arange(10) * 20)
