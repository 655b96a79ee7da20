"""The phantom chest-X-ray source: determinism, shapes, patient structure, findings, options."""

import numpy as np
import pytest

from common.data.imageset import ImageSet
from common.data.phantom import (
    FINDINGS,
    PhantomOptions,
    generate_phantom,
    render_patient,
)
from common.data.sources import SOURCES, DicomOptions
from common.errors import UserError

SMALL = PhantomOptions(num_patients=4, images_per_patient=3)


def _finding_effect(finding: str, patient: int, resolution: int = 32) -> np.ndarray:
    """Same patient, pose, exposure and noise with minus without the finding (float, H x W)."""
    without = render_patient(patient, (), resolution)[0].astype(np.float64)
    with_it = render_patient(patient, (finding,), resolution)[0].astype(np.float64)
    return with_it - without


def _box_mean(image: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> float:
    """Mean over the box given as fractions of the width (x) and height (y)."""
    h, w = image.shape
    return float(image[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)].mean())


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) centre of a boolean mask as fractions of the width and height."""
    ys, xs = np.nonzero(mask)
    return (xs.mean() + 0.5) / mask.shape[1], (ys.mean() + 0.5) / mask.shape[0]


# --- Determinism --------------------------------------------------------------------------------


def test_same_seed_gives_identical_images_and_labels():
    first = generate_phantom(SMALL, 32)
    second = generate_phantom(SMALL, 32)

    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.patient_ids, second.patient_ids)


def test_different_seed_gives_different_images():
    options = PhantomOptions(num_patients=4, images_per_patient=3, seed=1)

    first = generate_phantom(SMALL, 32)
    second = generate_phantom(options, 32)

    assert not np.array_equal(first.images, second.images)


def test_patients_do_not_depend_on_how_many_are_drawn():
    few = generate_phantom(PhantomOptions(num_patients=2, images_per_patient=2), 32)
    many = generate_phantom(PhantomOptions(num_patients=5, images_per_patient=2), 32)

    np.testing.assert_array_equal(few.images, many.images[:4])
    np.testing.assert_array_equal(few.labels, many.labels[:4])


# --- Shapes and metadata ------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [28, 32, 64, 128])
def test_shapes_and_dtypes(resolution):
    options = PhantomOptions(num_patients=3, images_per_patient=2)

    data = generate_phantom(options, resolution)

    assert isinstance(data, ImageSet)
    assert data.images.shape == (6, resolution, resolution)
    assert data.images.dtype == np.uint8
    assert data.labels.shape == (6, len(FINDINGS))
    assert data.labels.dtype == np.float32
    assert data.class_names == FINDINGS
    assert data.multi_label is True
    assert data.splits is None
    assert data.resolution == resolution


@pytest.mark.parametrize("resolution", [1, 7, 50, 97])
def test_other_resolutions_render(resolution):
    data = generate_phantom(PhantomOptions(num_patients=2, images_per_patient=1), resolution)

    assert data.images.shape == (2, resolution, resolution)


def test_images_use_the_intensity_range_like_an_x_ray():
    data = generate_phantom(PhantomOptions(num_patients=6, images_per_patient=1), 64)

    # Air outside the body is dark, bone and mediastinum bright.
    assert np.percentile(data.images, 2) < 30
    assert np.percentile(data.images, 98) > 180


def test_patient_ids_are_ordered_patient_by_patient():
    data = generate_phantom(SMALL, 32)

    expected = ["P00000"] * 3 + ["P00001"] * 3 + ["P00002"] * 3 + ["P00003"] * 3
    assert data.patient_ids.tolist() == expected
    assert data.has_patient_ids


def test_labels_follow_the_configured_finding_order():
    options = PhantomOptions(num_patients=50, images_per_patient=1, findings=("nodule", "opacity"))
    reference = generate_phantom(PhantomOptions(num_patients=50, images_per_patient=1), 8)

    data = generate_phantom(options, 8)

    assert data.class_names == ("nodule", "opacity")
    np.testing.assert_array_equal(data.labels[:, 0], reference.labels[:, FINDINGS.index("nodule")])
    np.testing.assert_array_equal(data.labels[:, 1], reference.labels[:, FINDINGS.index("opacity")])


def test_findings_left_out_of_the_options_are_never_drawn():
    options = PhantomOptions(
        num_patients=3, images_per_patient=1, findings=("nodule",), finding_rate=1.0
    )

    data = generate_phantom(options, 32)

    for patient in range(3):
        expected = render_patient(patient, ("nodule",), 32)[0]
        np.testing.assert_array_equal(data.images[patient], expected)


def test_findings_given_as_a_list_become_a_tuple():
    options = PhantomOptions(findings=["effusion", "nodule"])

    assert options.findings == ("effusion", "nodule")


# --- Patients -----------------------------------------------------------------------------------


def test_images_of_one_patient_are_closer_than_images_of_different_patients():
    options = PhantomOptions(num_patients=20, images_per_patient=3, finding_rate=0.0)
    data = generate_phantom(options, 32)
    flat = data.images.reshape(len(data), -1).astype(np.float64)

    distances = np.linalg.norm(flat[:, None] - flat[None], axis=-1)
    same = data.patient_ids[:, None] == data.patient_ids[None]
    other_image = ~np.eye(len(data), dtype=bool)
    within = distances[same & other_image].mean()
    between = distances[~same].mean()

    assert within < 0.8 * between


def test_images_of_one_patient_differ():
    images = render_patient(0, (), 32, num_images=3)

    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])


def test_findings_are_the_same_for_all_images_of_a_patient():
    data = generate_phantom(PhantomOptions(num_patients=30, images_per_patient=4), 8)

    per_patient = data.labels.reshape(30, 4, -1)

    assert (per_patient == per_patient[:, :1]).all()


def test_generated_images_match_render_patient_with_the_drawn_findings():
    data = generate_phantom(SMALL, 32)

    for patient in range(SMALL.num_patients):
        rows = slice(3 * patient, 3 * patient + 3)
        present = [f for f, on in zip(FINDINGS, data.labels[rows][0], strict=True) if on]
        expected = render_patient(patient, present, 32, num_images=3)
        np.testing.assert_array_equal(data.images[rows], expected)


# --- Labels -------------------------------------------------------------------------------------


def test_label_prevalence_is_near_the_finding_rate():
    options = PhantomOptions(num_patients=3000, images_per_patient=1, finding_rate=0.3)

    data = generate_phantom(options, 4)

    # 4 standard errors (sqrt(0.3 * 0.7 / 3000) ~ 0.0084) either side.
    np.testing.assert_allclose(data.labels.mean(axis=0), 0.3, atol=0.034)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_finding_rate_zero_and_one(rate):
    options = PhantomOptions(num_patients=20, images_per_patient=1, finding_rate=rate)

    data = generate_phantom(options, 4)

    assert (data.labels == rate).all()


def test_labels_are_multi_hot():
    data = generate_phantom(PhantomOptions(num_patients=200, images_per_patient=1), 4)

    sums = data.labels.sum(axis=1)

    assert set(np.unique(data.labels)) <= {0.0, 1.0}
    assert (sums == 0).any()  # no finding
    assert (sums >= 2).any()  # several at once


# --- Findings are visible at 32 px where they belong ---------------------------------------------

PATIENTS = range(8)


@pytest.mark.parametrize("patient", PATIENTS)
def test_cardiomegaly_brightens_the_heart_region(patient):
    effect = _finding_effect("cardiomegaly", patient)

    # The heart grows into the lower left lung field, i.e. the image right of centre.
    assert _box_mean(effect, 0.5, 0.85, 0.4, 0.75) > 10
    assert _box_mean(np.abs(effect), 0.0, 1.0, 0.0, 0.25) == 0
    assert _box_mean(np.abs(effect), 0.0, 0.3, 0.0, 1.0) < 1


@pytest.mark.parametrize("patient", PATIENTS)
def test_effusion_fills_the_lower_part_of_one_lung(patient):
    effect = _finding_effect("effusion", patient)

    left = _box_mean(effect, 0.1, 0.45, 0.45, 0.8)
    right = _box_mean(effect, 0.55, 0.9, 0.45, 0.8)
    assert max(left, right) > 15
    assert min(left, right) < 1
    assert _box_mean(np.abs(effect), 0.0, 1.0, 0.0, 0.25) == 0


@pytest.mark.parametrize("patient", PATIENTS)
def test_opacity_is_a_large_bright_patch_in_one_lung(patient):
    effect = _finding_effect("opacity", patient)
    visible = effect > 20

    x, y = _centroid(visible)
    assert visible.mean() > 0.03  # over 3% of the image
    assert effect.max() > 60
    assert 0.1 < abs(x - 0.5) < 0.35  # in a lung, not the mediastinum
    assert 0.2 < y < 0.55  # upper or middle zone


@pytest.mark.parametrize("patient", PATIENTS)
def test_nodule_is_a_small_clear_spot_in_one_lung(patient):
    effect = _finding_effect("nodule", patient)
    visible = effect > 20

    x, y = _centroid(visible)
    assert effect.max() > 80
    assert 0.005 < visible.mean() < 0.03  # a few pixels at 32 px, far smaller than an opacity
    assert 0.1 < abs(x - 0.5) < 0.35
    assert 0.2 < y < 0.6


def test_findings_change_different_regions():
    effects = {finding: _finding_effect(finding, patient=3) for finding in FINDINGS}

    _, opacity_y = _centroid(effects["opacity"] > 20)
    _, effusion_y = _centroid(effects["effusion"] > 20)
    assert effusion_y > opacity_y  # effusion at the base, opacity higher up
    assert (effects["opacity"] > 20).sum() > 2 * (effects["nodule"] > 20).sum()


def test_findings_do_not_change_the_patient_anatomy_elsewhere():
    effect = _finding_effect("nodule", patient=5)

    assert (effect != 0).mean() < 0.05


def test_render_patient_rejects_unknown_findings():
    with pytest.raises(ValueError, match="fracture"):
        render_patient(0, ("fracture",), 32)


# --- Options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_patients": 0}, "data.phantom.num_patients must be >= 1, got 0"),
        ({"num_patients": 2.5}, "data.phantom.num_patients must be an integer"),
        ({"num_patients": True}, "data.phantom.num_patients must be an integer"),
        ({"images_per_patient": 0}, "data.phantom.images_per_patient must be >= 1, got 0"),
        ({"finding_rate": 1.5}, "data.phantom.finding_rate must be in [0, 1]"),
        ({"finding_rate": -0.1}, "data.phantom.finding_rate must be in [0, 1]"),
        ({"finding_rate": "high"}, "data.phantom.finding_rate must be a number"),
        ({"seed": -1}, "data.phantom.seed must be >= 0"),
        ({"findings": ()}, "data.phantom.findings must name at least one finding"),
        ({"findings": "nodule"}, "data.phantom.findings must be a list"),
        ({"findings": ("nodule", "nodule")}, "data.phantom.findings lists a finding twice"),
        (
            {"findings": ("x",)},
            (
                "data.phantom.findings: unknown finding 'x'; "
                "valid: cardiomegaly, effusion, nodule, opacity"
            ),
        ),
    ],
)
def test_invalid_options_raise_user_error_naming_the_key(kwargs, message):
    with pytest.raises(UserError) as error:
        PhantomOptions(**kwargs)

    assert message in str(error.value)


@pytest.mark.parametrize("resolution", [0, -32])
def test_invalid_resolution_raises_user_error(resolution):
    with pytest.raises(UserError, match="resolution"):
        generate_phantom(SMALL, resolution)


def test_defaults_are_valid():
    options = PhantomOptions()

    assert options.num_patients == 300
    assert options.images_per_patient == 4
    assert options.findings == ("opacity", "cardiomegaly", "effusion", "nodule")
    assert options.finding_rate == 0.3
    assert options.seed == 0


# --- Registration -------------------------------------------------------------------------------


def test_registered_as_a_data_source_with_patient_ids():
    spec = SOURCES.get("phantom")
    options = PhantomOptions(num_patients=2, images_per_patient=2)

    data = spec.load(options, 32, DicomOptions())

    assert spec.name == "phantom"
    assert spec.options is PhantomOptions
    assert spec.has_patient_ids(options) is True
    assert data.images.shape == (4, 32, 32)
    np.testing.assert_array_equal(data.images, generate_phantom(options, 32).images)
