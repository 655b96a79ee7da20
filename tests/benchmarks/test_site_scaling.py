"""benchmarks/site_scaling.py: how many sites fit in memory, from the measured peaks."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def site_scaling():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling machine.py
    try:
        spec = importlib.util.spec_from_file_location(
            "site_scaling", BENCHMARKS / "site_scaling.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_sites_that_fit_follow_the_line_through_the_peaks(site_scaling):
    measured = [{"sites": 3, "peak_gib": 1.0}, {"sites": 10, "peak_gib": 1.7}]

    base, per_site, fitting = site_scaling.sites_that_fit(measured, memory_gib=24)

    assert base == pytest.approx(0.7)
    assert per_site == pytest.approx(0.1)
    assert fitting == 233  # (24 - 0.7) / 0.1


def test_memory_that_does_not_grow_with_sites_sets_no_limit(site_scaling):
    measured = [{"sites": 3, "peak_gib": 2.0}, {"sites": 30, "peak_gib": 1.9}]

    assert site_scaling.sites_that_fit(measured, memory_gib=24)[2] == -1
