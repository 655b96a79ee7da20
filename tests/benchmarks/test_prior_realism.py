"""benchmarks/prior_realism.py: a prior's own films, scored by the detector against real ones."""

import json
import sys

import numpy as np
import pytest

from common.data.phantom import PhantomOptions, generate_phantom
from common.prior.file import read_prior
from tests.helpers.benchmark_scripts import load_benchmark_script
from tests.helpers.priors import LABELLED, build_prior


@pytest.fixture(scope="module")
def script():
    return load_benchmark_script("prior_realism")


@pytest.fixture
def prior(tmp_path):
    return build_prior(tmp_path)[1]


def test_the_prior_draws_the_films_its_seed_fixes(script, prior):
    conditions = np.zeros((7, 1), np.float32)
    loaded = read_prior(str(prior))

    films = script.prior_films(loaded, conditions, seed=3)

    assert films.shape == (7, 28, 28) and films.dtype == np.uint8
    assert np.array_equal(films, script.prior_films(loaded, conditions, seed=3))
    assert not np.array_equal(films, script.prior_films(loaded, conditions, seed=4))


def test_a_labelled_prior_draws_each_film_for_its_condition(script, tmp_path):
    loaded = read_prior(str(build_prior(tmp_path, options=LABELLED)[1]))
    nodules = np.tile(np.float32([[0, 0, 0, 1]]), (3, 1))

    films = script.prior_films(loaded, nodules, seed=3)

    no_finding = script.prior_films(loaded, np.zeros_like(nodules), seed=3)
    assert films.shape == (3, 28, 28)
    assert not np.array_equal(films, no_finding)


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
