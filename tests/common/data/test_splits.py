"""Holdout splits and site partitions: invariants, determinism and error messages."""

import numpy as np
import pytest

from common.data.imageset import ImageSet
from common.data.splits import PARTITION_SCHEMES, partition, set_aside_untrained, split_holdout
from common.errors import UserError


def make_data(
    count: int = 300,
    patients: int = 40,
    classes: int = 3,
    seed: int = 0,
    multi_label: bool = False,
    with_patients: bool = True,
    splits: np.ndarray | None = None,
) -> ImageSet:
    """Small random images; patients own a random number of images each."""
    rng = np.random.default_rng(seed)
    if multi_label:
        labels = (rng.random((count, classes)) < 0.3).astype(np.float32)
    else:
        labels = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, count)]
    return ImageSet(
        images=rng.integers(0, 256, size=(count, 4, 4), dtype=np.uint8),
        labels=labels,
        class_names=tuple(f"c{i}" for i in range(classes)),
        multi_label=multi_label,
        patient_ids=rng.integers(0, patients, count).astype(str) if with_patients else None,
        splits=splits,
    )


def assert_disjoint_and_covering(parts: list[np.ndarray], count: int) -> None:
    combined = np.concatenate(parts)
    assert len(combined) == count
    np.testing.assert_array_equal(np.sort(combined), np.arange(count))


# ---- holdout ---------------------------------------------------------------------------


def test_random_holdout_is_patient_disjoint_and_near_fraction() -> None:
    data = make_data()

    train, holdout = split_holdout(data, 0.2, "", seed=1)

    assert_disjoint_and_covering([train, holdout], len(data))
    assert not set(data.patient_ids[train]) & set(data.patient_ids[holdout])
    assert abs(len(holdout) / len(data) - 0.2) < 0.05


def test_holdout_without_patient_ids_uses_single_images() -> None:
    data = make_data(count=100, with_patients=False)

    train, holdout = split_holdout(data, 0.25, "", seed=0)

    assert_disjoint_and_covering([train, holdout], 100)
    assert len(holdout) == 25


def test_holdout_fraction_zero_is_empty() -> None:
    data = make_data()

    train, holdout = split_holdout(data, 0.0, "", seed=0)

    assert len(holdout) == 0
    np.testing.assert_array_equal(train, np.arange(len(data)))


def test_holdout_is_deterministic_in_seed() -> None:
    data = make_data()

    first = split_holdout(data, 0.3, "", seed=5)
    again = split_holdout(data, 0.3, "", seed=5)
    other = split_holdout(data, 0.3, "", seed=6)

    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_predefined_split_is_the_holdout_and_train_split_the_training_set() -> None:
    names = np.array(["train"] * 6 + ["val"] * 2 + ["test"] * 2)
    data = make_data(count=10, splits=names)

    train, holdout = split_holdout(data, 0.5, "test", seed=0)

    np.testing.assert_array_equal(train, np.arange(6))
    np.testing.assert_array_equal(holdout, [8, 9])


def test_predefined_split_without_train_split_trains_on_the_rest() -> None:
    data = make_data(count=4, splits=np.array(["a", "b", "a", "b"]))

    train, holdout = split_holdout(data, 0.0, "b", seed=0)

    np.testing.assert_array_equal(train, [0, 2])
    np.testing.assert_array_equal(holdout, [1, 3])


def test_unknown_holdout_split_lists_available_splits() -> None:
    data = make_data(count=4, splits=np.array(["train", "train", "val", "test"]))

    with pytest.raises(UserError, match="data.holdout_split") as error:
        split_holdout(data, 0.0, "validation", seed=0)

    assert "test, train, val" in str(error.value)


def test_holdout_split_on_data_without_splits_names_the_key() -> None:
    with pytest.raises(UserError, match="data.holdout_split"):
        split_holdout(make_data(), 0.0, "test", seed=0)


# ---- partition -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", PARTITION_SCHEMES)
def test_partition_is_disjoint_covering_and_deterministic(scheme: str) -> None:
    data = make_data()

    sites = partition(data, 4, scheme, alpha=1.0, seed=3)
    again = partition(data, 4, scheme, alpha=1.0, seed=3)

    assert len(sites) == 4
    assert_disjoint_and_covering(sites, len(data))
    for first, second in zip(sites, again, strict=True):
        np.testing.assert_array_equal(first, second)


def test_iid_partition_is_near_equal() -> None:
    sites = partition(make_data(count=103), 4, "iid", alpha=1.0, seed=0)

    assert sorted(len(site) for site in sites) == [25, 26, 26, 26]


def test_by_patient_never_splits_a_patient_and_balances_images() -> None:
    data = make_data(count=400, patients=60)

    sites = partition(data, 3, "by-patient", alpha=1.0, seed=0)

    owners = [set(data.patient_ids[site]) for site in sites]
    assert not owners[0] & owners[1] and not owners[0] & owners[2] and not owners[1] & owners[2]
    sizes = [len(site) for site in sites]
    assert max(sizes) - min(sizes) <= 10


def test_dirichlet_small_alpha_skews_label_shares() -> None:
    data = make_data(count=2000, classes=2, seed=1)
    overall = data.labels[:, 0].mean()

    def skew(alpha: float) -> float:
        sites = partition(data, 4, "dirichlet", alpha=alpha, seed=0)
        return float(np.mean([abs(data.labels[site, 0].mean() - overall) for site in sites]))

    assert skew(0.1) > 0.2
    assert skew(1000.0) < 0.05


def test_dirichlet_strata_handle_multi_label_rows_without_findings() -> None:
    data = make_data(count=200, classes=3, multi_label=True)

    sites = partition(data, 3, "dirichlet", alpha=0.5, seed=0)

    assert_disjoint_and_covering(sites, 200)


def test_empty_site_is_reported_with_how_to_fix() -> None:
    data = make_data(count=10, classes=1)

    with pytest.raises(UserError, match="received no images") as error:
        partition(data, 5, "dirichlet", alpha=0.001, seed=0)

    message = str(error.value)
    assert "of 5" in message and "alpha=0.001" in message
    assert "federation.partition_alpha" in message


def test_fewer_patients_than_sites_is_reported() -> None:
    data = make_data(count=20, patients=2)

    with pytest.raises(UserError, match="by-patient, 2 patients"):
        partition(data, 3, "by-patient", alpha=1.0, seed=0)


def test_unknown_scheme_lists_the_schemes() -> None:
    with pytest.raises(UserError, match="iid, dirichlet, by-patient"):
        partition(make_data(), 2, "random", alpha=1.0, seed=0)


# ---- untrained share ---------------------------------------------------------------------


@pytest.mark.parametrize("scheme", PARTITION_SCHEMES)
def test_each_site_keeps_whole_patients_untrained_up_to_its_share(scheme: str) -> None:
    data = make_data(count=600, patients=150)
    sites = partition(data, 3, scheme, alpha=0.5, seed=0)

    trained, untrained = set_aside_untrained(data, sites, 0.2, seed=0)

    assert_disjoint_and_covering(trained + untrained, len(data))
    kept_patients = set(data.patient_ids[np.concatenate(untrained)])
    assert not kept_patients & set(data.patient_ids[np.concatenate(trained)])
    for site, (before, left, kept) in enumerate(zip(sites, trained, untrained)):
        assert set(left) | set(kept) == set(before), f"site {site} lost or gained images"
        assert len(kept) <= int(0.2 * len(before)) and len(left) > 0
    # Whole patients reach the share closely.
    assert abs(sum(map(len, untrained)) / len(data) - 0.2) < 0.05


def test_the_untrained_share_is_deterministic_and_empty_at_zero() -> None:
    data = make_data()
    sites = partition(data, 2, "iid", alpha=0.5, seed=0)

    first = set_aside_untrained(data, sites, 0.1, seed=3)
    again = set_aside_untrained(data, sites, 0.1, seed=3)
    other = set_aside_untrained(data, sites, 0.1, seed=4)
    none = set_aside_untrained(data, sites, 0.0, seed=3)

    assert all(np.array_equal(a, b) for a, b in zip(first[1], again[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(first[1], other[1]))
    assert [len(kept) for kept in none[1]] == [0, 0]
    assert all(np.array_equal(a, b) for a, b in zip(none[0], sites))


def test_a_site_too_small_for_a_whole_image_keeps_everything_to_train_on() -> None:
    data = make_data(count=12, with_patients=False)
    sites = [np.arange(0, 3), np.arange(3, 12)]

    trained, untrained = set_aside_untrained(data, sites, 0.3, seed=0)

    assert [len(kept) for kept in untrained] == [0, 2]
    assert [len(left) for left in trained] == [3, 7]
