"""benchmarks/matched_statistics_screen.py: each matching sets its statistic to the reference's."""

import numpy as np
import pytest

from tests.helpers.benchmark_scripts import load_benchmark_script


@pytest.fixture(scope="module")
def screen():
    return load_benchmark_script("matched_statistics_screen")


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 100, size=(200, 8, 8)).astype(np.uint8)
    smooth = np.repeat(np.repeat(rng.integers(60, 250, size=(300, 4, 4)), 2, 1), 2, 2)
    return dark, smooth.astype(np.uint8)


def test_the_histogram_matching_gives_the_reference_quantiles(screen, images):
    synthetic, reference = images

    out = screen.match_histogram(synthetic, reference)

    quantiles = np.linspace(0.05, 0.95, 7)
    assert np.abs(np.quantile(out, quantiles) - np.quantile(reference, quantiles)).max() <= 1
    assert np.abs(np.quantile(synthetic, quantiles) - np.quantile(reference, quantiles)).max() > 20


def test_the_pixel_matching_gives_every_pixel_the_reference_mean_and_spread(screen, images):
    synthetic, reference = images

    out = screen.match_pixels(synthetic, reference)

    np.testing.assert_allclose(out.mean(0), reference.mean(0), atol=1)
    np.testing.assert_allclose(out.std(0), reference.std(0), rtol=0.05)


def test_the_spectrum_matching_gives_the_reference_power_spectrum(screen, images):
    synthetic, reference = images
    power = lambda x: (np.abs(np.fft.fft2(x.astype(np.float64))) ** 2).mean(0)  # noqa: E731

    out = screen.match_spectrum(synthetic, reference)

    np.testing.assert_allclose(power(out), power(reference), rtol=0.1, atol=1e3)
    assert not np.allclose(power(synthetic), power(reference), rtol=0.1, atol=1e3)
