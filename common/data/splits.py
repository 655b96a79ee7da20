"""Setting aside a holdout set and partitioning the rest across simulated sites."""

import numpy as np

from common.data.imageset import ImageSet
from common.errors import UserError

PARTITION_SCHEMES = ("iid", "dirichlet", "by-patient")


def split_holdout(
    data: ImageSet, fraction: float, split_name: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, holdout indices), sorted.

    With `split_name`, the holdout is that predefined split and training uses split
    "train" if present, else all other images. Otherwise whole patients are drawn at
    random until about `fraction` of the images are held out.
    """
    if split_name:
        return _predefined_holdout(data, split_name)
    if not 0 <= fraction < 1:
        raise UserError(f"data.holdout_fraction must be in [0, 1), got {fraction}")
    everything = np.arange(len(data))
    if fraction == 0:
        return everything, np.zeros(0, dtype=np.int64)

    patients, inverse, counts = np.unique(
        data.patient_keys(), return_inverse=True, return_counts=True
    )
    if len(patients) < 2:
        raise UserError(
            f"cannot hold out a patient-disjoint {fraction:.0%} of the data: it has only "
            f"{len(patients)} patient; set data.holdout_fraction=0 or add data"
        )
    order = np.random.default_rng(seed).permutation(len(patients))
    # Take the number of shuffled patients whose image count comes closest to the target,
    # keeping at least one patient on each side.
    held = np.cumsum(counts[order])
    target = fraction * len(data)
    taken = int(np.argmin(np.abs(held[:-1] - target))) + 1
    holdout_patient = np.zeros(len(patients), dtype=bool)
    holdout_patient[order[:taken]] = True
    in_holdout = holdout_patient[inverse]
    return everything[~in_holdout], everything[in_holdout]


def _predefined_holdout(data: ImageSet, split_name: str) -> tuple[np.ndarray, np.ndarray]:
    if data.splits is None:
        raise UserError(
            f"data.holdout_split is {split_name!r} but this data source has no predefined "
            "splits; set data.holdout_split to '' to hold out a random fraction instead"
        )
    available = sorted(set(data.splits.tolist()))
    if split_name not in available:
        raise UserError(
            f"data.holdout_split is {split_name!r} but the data has splits "
            f"{', '.join(available)}; use one of those"
        )
    in_holdout = data.splits == split_name
    if split_name != "train" and "train" in available:
        in_train = data.splits == "train"
    else:
        in_train = ~in_holdout
    return np.flatnonzero(in_train), np.flatnonzero(in_holdout)


def partition(
    data: ImageSet, num_sites: int, scheme: str, alpha: float, seed: int
) -> list[np.ndarray]:
    """Disjoint, covering, sorted index arrays into `data`, one per site."""
    if scheme not in PARTITION_SCHEMES:
        raise UserError(
            f"federation.partition {scheme!r} is unknown; choose one of "
            f"{', '.join(PARTITION_SCHEMES)}"
        )
    if num_sites < 1:
        raise UserError(f"federation.num_sites must be >= 1, got {num_sites}")
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        sites = np.array_split(rng.permutation(len(data)), num_sites)
    elif scheme == "dirichlet":
        if alpha <= 0:
            raise UserError(f"federation.partition_alpha must be > 0, got {alpha}")
        sites = _dirichlet(data, num_sites, alpha, rng)
    else:
        sites = _by_patient(data, num_sites, rng)

    for site, indices in enumerate(sites):
        if len(indices) == 0:
            raise UserError(_empty_site_message(data, site, num_sites, scheme, alpha))
    return [np.sort(indices).astype(np.int64) for indices in sites]


def set_aside_untrained(
    data: ImageSet, sites: list[np.ndarray], fraction: float, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(what each site trains on, what each site keeps untrained): indices into `data`.

    Whole patients are drawn at random and all their images kept untrained, wherever they lie,
    so that the untrained images share no patient with what the sites train on. A site keeps at
    most `fraction` of its images (rounded down) untrained: a patient whose images would take
    one of its sites past that is passed over, and no site is left without images.
    """
    if fraction == 0:
        return list(sites), [np.zeros(0, dtype=np.int64) for _ in sites]
    site_of = np.empty(len(data), dtype=np.int64)
    for site, indices in enumerate(sites):
        site_of[indices] = site
    room = np.array([int(fraction * len(indices)) for indices in sites])
    _, patient_of = np.unique(data.patient_keys(), return_inverse=True)
    order = np.argsort(patient_of, kind="stable")
    images_of = np.split(order, np.flatnonzero(np.diff(patient_of[order])) + 1)
    untrained = np.zeros(len(data), dtype=bool)
    # Another stream than the partition's: which patients stay untrained does not follow
    # which site they went to.
    for patient in np.random.default_rng([seed, 1]).permutation(len(images_of)):
        taken = np.bincount(site_of[images_of[patient]], minlength=len(sites))
        if np.all(taken <= room):
            room -= taken
            untrained[images_of[patient]] = True
    return (
        [indices[~untrained[indices]] for indices in sites],
        [indices[untrained[indices]] for indices in sites],
    )


def _empty_site_message(
    data: ImageSet, site: int, num_sites: int, scheme: str, alpha: float
) -> str:
    fixes = "use fewer sites (federation.num_sites)"
    if scheme == "dirichlet":
        how = f"dirichlet, alpha={alpha:g}"
        fixes += ", a larger federation.partition_alpha"
    elif scheme == "by-patient":
        how = f"by-patient, {len(np.unique(data.patient_keys()))} patients"
    else:
        how = f"iid, {len(data)} images"
    return (
        f"site {site} of {num_sites} (counting from 0) received no images ({how}); "
        f"{fixes} or more data"
    )


def _strata(data: ImageSet) -> np.ndarray:
    """Label stratum per image: its class, or for multi-label its first finding (-1: none)."""
    positive = data.labels > 0
    first = np.argmax(positive, axis=1)
    return np.where(positive.any(axis=1), first, -1)


def _dirichlet(
    data: ImageSet, num_sites: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Each label stratum is shared among sites in proportions drawn from Dirichlet(alpha)."""
    strata = _strata(data)
    parts: list[list[np.ndarray]] = [[] for _ in range(num_sites)]
    for stratum in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        shares = rng.dirichlet(np.full(num_sites, alpha))
        cuts = np.round(np.cumsum(shares)[:-1] * len(members)).astype(np.int64)
        for site, chunk in enumerate(np.split(members, cuts)):
            parts[site].append(chunk)
    return [np.concatenate(chunks) for chunks in parts]


def _by_patient(data: ImageSet, num_sites: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Whole patients go to sites, largest first, each to the site with fewest images so far."""
    _, inverse, counts = np.unique(data.patient_keys(), return_inverse=True, return_counts=True)
    # Shuffle first so that patients with equal counts land on sites at random.
    shuffled = rng.permutation(len(counts))
    order = shuffled[np.argsort(-counts[shuffled], kind="stable")]
    site_of_patient = np.zeros(len(counts), dtype=np.int64)
    load = np.zeros(num_sites, dtype=np.int64)
    for patient in order:
        site = int(np.argmin(load))
        site_of_patient[patient] = site
        load[site] += counts[patient]
    site_of_image = site_of_patient[inverse]
    return [np.flatnonzero(site_of_image == site) for site in range(num_sites)]
