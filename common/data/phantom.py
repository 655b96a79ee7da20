"""`phantom`: procedurally drawn chest-X-ray-like images, the embedded default data source.

Each image is a frontal (PA) chest radiograph rendered from a few shapes, bright where tissue
absorbs X-rays: black air around a soft-tissue trunk, two dark lungs with hilar and vascular
markings, the heart bulging to the image right (the patient's left, radiological convention),
mediastinum, trachea, spine, ribs, clavicles, diaphragm domes at the lung bases and a gastric
air bubble below the left dome.

Why: the demo and the tests need a data set that needs no files or downloads yet behaves like
the real thing where it matters here. It has patient IDs and several images per patient: a
patient index fixes the anatomy (body width, lung size and shape, heart size, rib spacing, ...),
and a patient's images differ only by pose, exposure and noise. So images of one patient are
linkable to each other, which gives later patient-linkage and membership attacks something real
to find. Findings are multi-label conditions drawn per patient (each independently with
probability `finding_rate`) and are drawn strongly enough to tell apart even at 32x32 pixels:

- opacity: a large hazy bright patch in the upper or middle zone of one lung;
- cardiomegaly: a heart spanning 60-68% of the thoracic width (38-46% when normal);
- effusion: homogeneous fluid filling the lower part of one lung, hiding its diaphragm dome;
- nodule: one small, sharp, round bright spot in one lung.

Everything is deterministic from `seed`: patient p's anatomy and findings come from an RNG seeded
by (seed, p), image i of that patient from one seeded by (seed, p, i). Images are rendered at the
requested resolution directly from the shapes (vectorised numpy, anti-aliased edges, fine
periodic structure such as ribs filtered to what the pixel grid can show).
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from common.data.imageset import ImageSet
from common.data.sources import SOURCES, DicomOptions, SourceSpec
from common.errors import UserError

FINDINGS: tuple[str, ...] = ("opacity", "cardiomegaly", "effusion", "nodule")
"""Every finding the phantom can draw, in the default label order."""


@dataclass(frozen=True)
class PhantomOptions:
    """Config key `data.phantom`.

    num_patients: how many patients to draw (IDs "P00000", "P00001", ...).
    images_per_patient: images per patient; they differ by pose, exposure and noise only.
    findings: label columns, any of "opacity", "cardiomegaly", "effusion", "nodule".
    finding_rate: probability that a patient has each finding, independently.
    seed: fixes every patient and image.
    """

    num_patients: int = 300
    images_per_patient: int = 4
    findings: tuple[str, ...] = FINDINGS
    finding_rate: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_patients", "images_per_patient", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise UserError(f"data.phantom.{name} must be an integer, got {value!r}")
        if self.num_patients < 1:
            raise UserError(f"data.phantom.num_patients must be >= 1, got {self.num_patients}")
        if self.images_per_patient < 1:
            raise UserError(
                f"data.phantom.images_per_patient must be >= 1, got {self.images_per_patient}"
            )
        if self.seed < 0:
            raise UserError(f"data.phantom.seed must be >= 0, got {self.seed}")
        rate = self.finding_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float | np.number):
            raise UserError(f"data.phantom.finding_rate must be a number, got {rate!r}")
        if not 0.0 <= rate <= 1.0:
            raise UserError(f"data.phantom.finding_rate must be in [0, 1], got {rate}")
        findings = self.findings
        if isinstance(findings, str) or not isinstance(findings, Iterable):
            raise UserError(
                f"data.phantom.findings must be a list of finding names, got {findings!r}"
            )
        findings = tuple(findings)
        valid = ", ".join(sorted(FINDINGS))
        if not findings:
            raise UserError(f"data.phantom.findings must name at least one finding; valid: {valid}")
        for finding in findings:
            if finding not in FINDINGS:
                raise UserError(
                    f"data.phantom.findings: unknown finding {finding!r}; valid: {valid}"
                )
        if len(set(findings)) != len(findings):
            raise UserError(f"data.phantom.findings lists a finding twice: {', '.join(findings)}")
        object.__setattr__(self, "findings", findings)  # a YAML list becomes a tuple


def generate_phantom(options: PhantomOptions, resolution: int) -> ImageSet:
    """Draw options.num_patients x options.images_per_patient images, patient by patient.

    Labels are float32 multi-hot over options.findings (all zero: no finding); patient_ids are
    "P00000", "P00001", ...; there are no predefined splits.
    """
    _check_resolution(resolution)
    patients = [_patient_params(options.seed, p) for p in range(options.num_patients)]
    present = [  # a finding left out of options.findings is never drawn
        {f: f in options.findings and params[f"has_{f}"] < options.finding_rate for f in FINDINGS}
        for params in patients
    ]
    count = options.images_per_patient
    jobs = [
        (p, params, present[p], image)
        for p, params in enumerate(patients)
        for image in range(count)
    ]
    images = _render_many(options.seed, jobs, resolution)
    labels = np.array(
        [[float(flags[f]) for f in options.findings] for flags in present], dtype=np.float32
    ).repeat(count, axis=0)
    patient_ids = np.array([f"P{p:05d}" for p in range(len(patients))]).repeat(count)
    return ImageSet(
        images=images,
        labels=labels,
        class_names=options.findings,
        multi_label=True,
        patient_ids=patient_ids,
        splits=None,
    )


def render_patient(
    patient: int,
    findings: Iterable[str],
    resolution: int,
    *,
    seed: int = 0,
    num_images: int = 1,
) -> np.ndarray:
    """Images 0..num_images-1 of `patient` (as generate_phantom draws them for `seed`), but with
    exactly `findings` present instead of the randomly drawn ones. uint8 (num_images, H, W).

    Useful to compare one anatomy with and without a finding.
    """
    _check_resolution(resolution)
    findings = set(findings)
    unknown = findings - set(FINDINGS)
    if unknown:
        raise ValueError(f"unknown findings {sorted(unknown)}; valid: {', '.join(FINDINGS)}")
    params = _patient_params(seed, patient)
    present = {f: f in findings for f in FINDINGS}
    return _render_many(
        seed, [(patient, params, present, i) for i in range(num_images)], resolution
    )


def _check_resolution(resolution: int) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        raise UserError(f"resolution must be a positive integer, got {resolution!r}")
    if resolution < 1:
        raise UserError(f"resolution must be a positive integer, got {resolution}")


# --- Random parameters -------------------------------------------------------------------------
# Coordinates are normalised: x (right) and y (down) run over [-1, 1] across the image. The
# patient frame (u, v) is the image frame before the per-image pose. "Lateral" coordinates
# l = side * u mirror the image-left lung (side -1, the patient's right) onto the right one.

# (name, low, high): drawn uniformly in this order from the patient's RNG. Appending is fine;
# reordering or inserting changes every patient.
_PATIENT_RANGES: tuple[tuple[str, float, float], ...] = (
    ("body_w", 0.80, 0.94),  # trunk half-width
    ("body_top", -1.0, -0.88),  # top of the shoulders
    ("neck_w", 0.24, 0.32),  # neck half-width
    ("soft", 0.36, 0.44),  # soft-tissue brightness
    ("lung_dark", 0.26, 0.31),  # how much darker aerated lung is than soft tissue
    ("lung_cx", 0.35, 0.42),  # lung centre, lateral
    ("lung_a", 0.24, 0.31),  # lung half-width
    ("lung_top", -0.76, -0.62),  # lung apex
    ("lung_base", 0.38, 0.54),  # left (image-right) diaphragm level
    ("right_elev", 0.02, 0.08),  # the right dome sits higher by this
    ("dome", 0.07, 0.14),  # dome height
    ("medi", 0.09, 0.13),  # mediastinum half-width (medial lung edge)
    ("ctr", 0.38, 0.46),  # normal cardiothoracic ratio
    ("ctr_big", 0.60, 0.68),  # cardiothoracic ratio with cardiomegaly
    ("heart_tilt", 0.40, 0.70),  # radians, apex down and to the image right
    ("heart_aspect", 0.60, 0.72),  # heart half-height / half-width
    ("spine_w", 0.05, 0.07),
    ("rib_sp", 0.105, 0.135),  # posterior rib spacing
    ("rib_r0", -0.88, -0.80),  # first rib level at the spine
    ("rib_alpha", 0.75, 1.15),  # how steeply ribs fall laterally
    ("rib_sigma", 0.014, 0.020),  # rib half-thickness (Gaussian sigma)
    ("clav_y", -0.80, -0.68),
    ("clav_slope", 0.04, 0.14),
    ("vessel_phase", 0.0, 1.0),  # lung vessels radiating from the hila
    ("vessel_count", 13.0, 17.0),
    ("tex_a0", 0.0, 2 * np.pi),  # lung-marking texture: 3 plane waves (angle, frequency, phase)
    ("tex_f0", 7.0, 13.0),
    ("tex_p0", 0.0, 2 * np.pi),
    ("tex_a1", 0.0, 2 * np.pi),
    ("tex_f1", 7.0, 13.0),
    ("tex_p1", 0.0, 2 * np.pi),
    ("tex_a2", 0.0, 2 * np.pi),
    ("tex_f2", 7.0, 13.0),
    ("tex_p2", 0.0, 2 * np.pi),
    ("has_opacity", 0.0, 1.0),  # a finding is present when this is < finding_rate
    ("has_cardiomegaly", 0.0, 1.0),
    ("has_effusion", 0.0, 1.0),
    ("has_nodule", 0.0, 1.0),
    ("op_side", 0.0, 1.0),  # < 0.5: image-left lung
    ("op_zone", 0.22, 0.55),  # blob centre, fraction of lung height from the apex
    ("op_lat", -0.25, 0.25),  # blob centre, fraction of lung half-width from lung centre
    ("op_sx", 0.15, 0.20),
    ("op_sy", 0.15, 0.21),
    ("op_amp", 0.34, 0.42),
    ("ef_side", 0.0, 1.0),
    ("ef_fill", 0.40, 0.52),  # filled fraction of lung height
    ("ef_meniscus", 0.12, 0.20),
    ("no_side", 0.0, 1.0),
    ("no_zone", 0.28, 0.50),
    ("no_lat", -0.25, 0.25),
    ("no_r", 0.10, 0.13),  # 5-6.5% of the image width
)

_IMAGE_RANGES: tuple[tuple[str, float, float], ...] = (
    ("rot", -0.025, 0.025),  # radians
    ("scale", 0.98, 1.02),
    ("tx", -0.02, 0.02),
    ("ty", -0.02, 0.02),
    ("gamma", 0.92, 1.08),
    ("contrast", 0.95, 1.05),
    ("bright", -0.025, 0.025),
    ("noise", 0.006, 0.018),
    ("jit_x", -0.02, 0.02),  # finding location jitter
    ("jit_y", -0.02, 0.02),
)

_PATIENT_STREAM, _IMAGE_STREAM = 1, 2


def _draw(ranges: tuple[tuple[str, float, float], ...], rng: np.random.Generator) -> dict:
    draws = rng.random(len(ranges))
    return {name: lo + (hi - lo) * u for (name, lo, hi), u in zip(ranges, draws, strict=True)}


def _patient_params(seed: int, patient: int) -> dict[str, float]:
    """Anatomy, finding geometry and finding draws of one patient (independent of options)."""
    p = _draw(_PATIENT_RANGES, np.random.default_rng([_PATIENT_STREAM, seed, patient]))
    p["thorax_w"] = 2 * (p["lung_cx"] + p["lung_a"])
    return p


def _image_rng(seed: int, patient: int, image: int) -> np.random.Generator:
    return np.random.default_rng([_IMAGE_STREAM, seed, patient, image])


# --- Rendering ---------------------------------------------------------------------------------

_CHUNK_PIXELS = 1 << 16  # pixels rendered per batch: keeps temporaries small and cache-friendly
_TONE = 2.0  # strength of the film-like tone curve


def _render_many(
    seed: int,
    jobs: list[tuple[int, dict[str, float], dict[str, bool], int]],
    resolution: int,
) -> np.ndarray:
    """Render (patient index, patient params, findings present, image index) jobs, in order."""
    out = np.empty((len(jobs), resolution, resolution), dtype=np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (resolution * resolution))
    for start in range(0, len(jobs), chunk):
        batch = jobs[start : start + chunk]
        rows, noise = [], np.empty((len(batch), resolution, resolution), dtype=np.float32)
        for k, (patient, params, present, image) in enumerate(batch):
            rng = _image_rng(seed, patient, image)
            row = dict(params)
            row.update(_draw(_IMAGE_RANGES, rng))
            for finding in FINDINGS:
                row[f"is_{finding}"] = float(present.get(finding, False))
            rows.append(row)
            noise[k] = rng.standard_normal((resolution, resolution), dtype=np.float32)
        columns = {
            name: np.array([row[name] for row in rows], dtype=np.float32)[:, None, None]
            for name in rows[0]
        }
        out[start : start + len(batch)] = _render(columns, noise, resolution)
    return out


def _ramp(f: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased step: 0 where f << 0, 1 where f >> 0, linear over `width` around f == 0."""
    return np.clip(f * np.float32(1.0 / width) + np.float32(0.5), 0.0, 1.0)


def _pulses(
    t: np.ndarray, period: np.ndarray, sigma: np.ndarray, blur: float | np.ndarray
) -> np.ndarray:
    """Gaussian pulses (peak ~1, width sigma) at every integer t, t in units of `period`,
    prefiltered by a Gaussian of width `blur`: three Fourier harmonics, so structure finer than
    the pixel grid fades to its mean instead of aliasing."""
    mean = np.minimum(sigma * np.float32(np.sqrt(2 * np.pi)) / period, 1)
    fine = np.float32(-2 * np.pi**2) * (sigma**2 + blur**2) / period**2
    c1 = np.cos(np.float32(2 * np.pi) * t)
    c2 = 2 * c1 * c1 - 1
    c3 = (2 * c2 - 1) * c1  # cos(3x) = 4 cos^3 x - 3 cos x
    h1, h2, h3 = np.exp(fine), np.exp(4 * fine), np.exp(9 * fine)
    return mean * (1 + 2 * (h1 * c1 + h2 * c2 + h3 * c3))


def _smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Union of two shapes given as signed distances (positive inside), blended over k."""
    h = np.clip(0.5 + 0.5 * (a - b) / k, 0, 1)
    return b + (a - b) * h + k * h * (1 - h)


def _render(p: dict[str, np.ndarray], noise: np.ndarray, resolution: int) -> np.ndarray:
    """Render a batch; every p[name] is float32 (n, 1, 1), noise is (n, H, W).

    Values are summed as attenuation (air 0, soft tissue ~0.4, bone adds), then a film-like
    tone curve compresses bright regions, so bone shows most over the lungs as on a radiograph.
    """
    f32 = np.float32
    pixel = 2.0 / resolution
    edge = float(np.hypot(pixel, 0.012))  # anti-aliasing plus a little anatomical blur
    blur = 0.45 * pixel  # what the pixel grid blurs fine periodic structure by

    # Pose: image coordinates (x, y) -> patient coordinates (u, v).
    grid = (np.arange(resolution, dtype=f32) + f32(0.5)) * f32(pixel) - f32(1.0)
    x, y = grid[None, None, :], grid[None, :, None]
    cos, sin = np.cos(p["rot"]), np.sin(p["rot"])
    dx, dy = x - p["tx"], y - p["ty"]
    u = (cos * dx + sin * dy) / p["scale"]
    v = (cos * dy - sin * dx) / p["scale"]
    au = np.abs(u)

    top = p["lung_top"]
    base_left = p["lung_base"]  # image right
    base_right = p["lung_base"] - p["right_elev"]  # image left, a little higher
    height = base_left - top

    # Trunk: a superellipse (rounded shoulders, open below) plus the neck, thickest (brightest)
    # in the middle like a cylinder.
    half_h = np.where(v < 0.1, 0.1 - p["body_top"], f32(1.6))
    across = (u / p["body_w"]) ** 2
    q = across * across + ((v - f32(0.1)) / half_h) ** 4
    body = _ramp((1 - np.sqrt(np.sqrt(q))) * p["body_w"], edge)
    body = np.maximum(body, _ramp(p["neck_w"] - au, edge) * _ramp(p["body_top"] + 0.3 - v, 0.1))
    img = body * p["soft"] * (f32(0.5) + f32(0.5) * np.sqrt(np.clip(1 - across, 0, 1)))

    # Heart (a tilted ellipse whose horizontal extent is ctr x thorax width), merged with the
    # mediastinum and the aortic knob into one silhouette that displaces lung.
    ctr = p["ctr"] + p["is_cardiomegaly"] * (p["ctr_big"] - p["ctr"])
    tilt, aspect = p["heart_tilt"], p["heart_aspect"]
    ct, st = np.cos(tilt), np.sin(tilt)
    half_x = ctr * p["thorax_w"] / 2
    ha = half_x / np.sqrt(ct * ct + (aspect * st) ** 2)
    hb = aspect * ha
    half_y = ha * np.sqrt(st * st + (aspect * ct) ** 2)
    hx = f32(0.38) * half_x  # about a third of the heart lies right of the midline
    hy = base_left - f32(0.55) * p["dome"] - f32(0.62) * half_y
    hu, hv = u - hx, v - hy
    r = np.sqrt(((ct * hu + st * hv) / ha) ** 2 + ((ct * hv - st * hu) / hb) ** 2)
    f_heart = (1 - r) * hb
    knob_v = top + f32(0.30) * height
    f_knob = f32(0.07) - np.sqrt((u - p["medi"] - 0.01) ** 2 + (v - knob_v) ** 2)
    f_solid = _smooth_union(_smooth_union(f_heart, f_knob, 0.08), p["medi"] - au, 0.06)
    solid = _ramp(f_solid, edge)
    img += f32(0.05) * _ramp(f_heart, edge) * _ramp(base_left - p["dome"] - v, 0.1)

    # Lungs, fluid and aerated part per side (-1: image left, +1: image right).
    air_total = 0
    lungs = {}
    for side, base in ((-1, base_right), (1, base_left)):
        lateral = u * f32(side)
        a, lc = p["lung_a"], p["lung_cx"]
        bottom = base + f32(0.25)
        vc, b = (top + bottom) / 2, (bottom - top) / 2
        t = np.clip((v - top) / (f32(1.1) * b), 0, 1)
        taper = t * (2 - t)
        aw = a * (f32(0.50) + f32(0.50) * taper)
        cx = lc - f32(0.07) * (1 - taper)  # the apex sits medially
        f_ellipse = (1 - np.sqrt(((lateral - cx) / aw) ** 2 + ((v - vc) / b) ** 2)) * a
        f_medial = lateral - p["medi"]
        dome = base - p["dome"] * (1 - ((lateral - lc + f32(0.04)) / (a + f32(0.06))) ** 2)
        lung = _ramp(np.minimum(np.minimum(f_ellipse, f_medial), dome - v), edge)

        # Effusion: fluid below a level that rises laterally (meniscus), fading in at the top.
        on_side = (p["ef_side"] >= 0.5) if side > 0 else (p["ef_side"] < 0.5)
        level = base - p["ef_fill"] * (base - top)
        level = level - p["ef_meniscus"] * np.clip((lateral - p["medi"]) / (2 * a), 0, 1) ** 2
        fluid = lung * _ramp(v - level, 0.05 + edge) * (p["is_effusion"] * on_side)

        # Hilum and vessels: bright lines radiating from it, thinning and fading outwards.
        dl, dv = lateral - p["medi"] - f32(0.06), v - top - f32(0.42) * (base - top)
        r2 = dl * dl + dv * dv
        r = np.sqrt(r2) + f32(1e-3)
        turn = p["vessel_count"] / f32(2 * np.pi)  # vessels per radian
        angle = np.arctan2(dv, dl) * turn + p["vessel_phase"] + f32(0.6) * r
        width = (f32(0.008) + f32(0.012) * np.exp(-r / f32(0.2))) * turn / r
        vessels = _pulses(angle, f32(1.0), width, blur * turn / r) * np.exp(-r / f32(0.45))
        hilum = np.exp(-r2 / f32(0.012))
        rel = np.clip((v - top) / (base - top), 0, 1)  # 0 at the apex, 1 at the base

        air = (lung - fluid) * (1 - solid)
        img += air * (f32(0.05) * rel + f32(0.07) * hilum + f32(0.10) * vessels - p["lung_dark"])
        img += fluid * f32(0.04)
        lungs[side] = lung * (1 - solid)
        air_total = air_total + air

    # Lung texture: three plane waves.
    texture = 0
    for k in range(3):
        ang = p[f"tex_a{k}"]
        wave = p[f"tex_f{k}"] * (np.cos(ang) * u + np.sin(ang) * v) + p[f"tex_p{k}"]
        texture = texture + np.cos(wave)
    img += air_total * f32(0.015) * texture

    # Gastric bubble under the left (image-right) dome.
    bubble_v = base_left + f32(0.10)
    bubble = _ramp(1 - np.sqrt(((u - 0.36) / 0.12) ** 2 + ((v - bubble_v) / 0.07) ** 2), 0.4)
    img -= f32(0.07) * bubble

    # Spine with vertebrae; trachea down to the carina.
    spine = _ramp(p["spine_w"] - au, edge)
    img += spine * (f32(0.05) + f32(0.04) * _pulses(v / f32(0.12), f32(0.12), f32(0.035), blur))
    trachea = _ramp(f32(0.04) - np.abs(u - 0.01), edge) * _ramp(knob_v + 0.12 - v, edge)
    img -= f32(0.10) * trachea

    # Posterior ribs: ten arcs falling laterally, one every rib_sp; fainter anterior ribs
    # falling medially.
    lp = f32(0.22)
    curve = p["rib_alpha"] * ((au - lp) ** 2 - lp * lp)
    t = (v - p["rib_r0"] - curve) / p["rib_sp"]
    extent = _ramp((t + 0.5) * p["rib_sp"], edge) * _ramp((9.5 - t) * p["rib_sp"], edge)
    extent *= _ramp(au - p["spine_w"] * 0.8, edge) * _ramp(p["thorax_w"] / 2 + 0.08 - au, edge)
    ribs = _pulses(t, p["rib_sp"], p["rib_sigma"], blur)
    front_sp = p["rib_sp"] * f32(1.3)
    ta = (v - p["rib_r0"] - f32(0.1) + f32(0.35) * au) / front_sp
    front = _pulses(ta, front_sp, p["rib_sigma"] * f32(1.3), blur)
    img += body * extent * (f32(0.085) * ribs + f32(0.03) * front)

    # Clavicles: from the manubrium outwards and slightly up.
    l0, l1 = f32(0.07), f32(0.56)
    sx, sy = l1 - l0, -p["clav_slope"]
    s = np.clip(((au - l0) * sx + (v - p["clav_y"]) * sy) / (sx * sx + sy * sy), 0, 1)
    dist = np.sqrt((au - l0 - s * sx) ** 2 + (v - p["clav_y"] - s * sy) ** 2)
    img += f32(0.16) * body * _ramp(f32(0.032) - dist, edge)

    # Findings: a hazy patch (opacity) or a sharp disc (nodule) in one lung.
    for key in ("op", "no"):
        right = p[f"{key}_side"] >= 0.5
        side = np.where(right, f32(1), f32(-1))
        base = np.where(right, base_left, base_right)
        cu = side * (p["lung_cx"] + p[f"{key}_lat"] * p["lung_a"]) + p["jit_x"]
        cv = top + p[f"{key}_zone"] * (base - top) + p["jit_y"]
        if key == "op":
            blob = np.exp(-(((u - cu) / p["op_sx"]) ** 2 + ((v - cv) / p["op_sy"]) ** 2) / 2)
            lung = np.where(right, lungs[1], lungs[-1])
            patchy = f32(0.85) + f32(0.05) * texture
            img += p["is_opacity"] * p["op_amp"] * blob * patchy * lung
        else:
            disc = _ramp(p["no_r"] - np.sqrt((u - cu) ** 2 + (v - cv) ** 2), pixel)
            img += p["is_nodule"] * f32(0.38) * disc

    # Film-like tone curve, exposure, noise.
    img = (1 - np.exp(f32(-_TONE) * np.clip(img, 0, None))) * f32(1 / (1 - np.exp(-_TONE)))
    img = np.clip(img, 0, 1) ** p["gamma"]
    img = img * p["contrast"] + p["bright"] + noise * p["noise"]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _load(options: PhantomOptions, resolution: int, dicom: DicomOptions) -> ImageSet:
    return generate_phantom(options, resolution)


SOURCES.register("phantom")(
    SourceSpec(
        name="phantom",
        options=PhantomOptions,
        load=_load,
        has_patient_ids=lambda options: True,
    )
)
