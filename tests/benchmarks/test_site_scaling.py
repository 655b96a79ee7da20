"""benchmarks/site_scaling.py: how many sites fit in memory, from the measured peaks."""

import pytest

from tests.helpers.benchmark_scripts import load_benchmark_script


@pytest.fixture(scope="module")
def site_scaling():
    return load_benchmark_script("site_scaling")


def test_sites_that_fit_follow_the_line_through_the_peaks(site_scaling):
    measured = [{"sites": 3, "peak_gib": 1.0}, {"sites": 10, "peak_gib": 1.7}]

    base, per_site, fitting = site_scaling.sites_that_fit(measured, memory_gib=24)

    assert base == pytest.approx(0.7)
    assert per_site == pytest.approx(0.1)
    assert fitting == 233  # (24 - 0.7) / 0.1


def test_memory_that_does_not_grow_with_sites_sets_no_limit(site_scaling):
    measured = [{"sites": 3, "peak_gib": 2.0}, {"sites": 30, "peak_gib": 1.9}]

    assert site_scaling.sites_that_fit(measured, memory_gib=24)[2] == -1
