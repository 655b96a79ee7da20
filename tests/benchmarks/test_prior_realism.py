"""benchmarks/prior_realism.py: a prior's own films, scored by the detector against real ones."""

import json
import sys

import numpy as np
import pytest

from common.data.phantom import PhantomOptions, generate_phantom
from tests.helpers.benchmark_scripts import load_benchmark_script
from tests.helpers.priors import build_prior


@pytest.fixture(scope="module")
def script():
    return load_benchmark_script("prior_realism")


@pytest.fixture
def prior(tmp_path):
    return build_prior(tmp_path)[1]


def test_the_prior_draws_the_films_its_seed_fixes(script, prior):
    films, provenance = script.prior_films(str(prior), count=7, seed=3)
    again, _ = script.prior_films(str(prior), count=7, seed=3)
    other, _ = script.prior_films(str(prior), count=7, seed=4)

    assert films.shape == (7, 28, 28) and films.dtype == np.uint8
    assert provenance["resolution"] == 28
    assert np.array_equal(films, again)
    assert not np.array_equal(films, other)


def test_an_untrained_prior_is_told_from_phantom_films(script, prior, tmp_path, monkeypatch):
    real = tmp_path / "real.npz"
    films = generate_phantom(PhantomOptions(num_patients=100, images_per_patient=2, seed=7), 28)
    np.savez(real, images=films.images)
    out = tmp_path / "realism.jsonl"
    argv = ["prior_realism.py", str(prior), str(real), "--samples", "200", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)

    script.main()

    row = json.loads(out.read_text())
    assert row["samples"] == 200 and row["real"] == "real.npz"
    assert row["detector_auc"] > 0.9  # two steps of training draw noise, not films
