import numpy as np

from client.sampling import PoissonSampler


def test_image_unit_batch_size_matches_rate():
    keys = np.arange(10_000).astype(str)
    sampler = PoissonSampler(keys, 0.01, np.random.default_rng(0))

    sizes = [len(sampler.sample()) for _ in range(200)]

    assert 90 < np.mean(sizes) < 110
    assert len(set(sizes)) > 5  # Poisson: the batch size varies


def test_patient_unit_takes_at_most_one_image_per_patient():
    patients = np.repeat([f"p{i}" for i in range(100)], 7)
    sampler = PoissonSampler(patients, 0.5, np.random.default_rng(0))

    for _ in range(50):
        batch = sampler.sample()
        assert len(set(patients[batch])) == len(batch)
    assert sampler.num_units == 100


def test_every_image_of_a_patient_can_be_chosen():
    patients = np.array(["a", "a", "a", "b"])
    sampler = PoissonSampler(patients, 1.0, np.random.default_rng(0))

    seen = set()
    for _ in range(100):
        seen.update(sampler.sample().tolist())

    assert seen == {0, 1, 2, 3}


def test_empty_batches_happen_at_low_rates():
    sampler = PoissonSampler(np.array(["a", "b"]), 0.01, np.random.default_rng(0))

    assert any(len(sampler.sample()) == 0 for _ in range(50))
