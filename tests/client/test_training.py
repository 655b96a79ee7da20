import numpy as np
import pytest
import torch

from client.training import DPGANTrainer, DPSettings, mode_seeking_penalty
from common.conditions import sample_conditions
from common.config import ARCHITECTURES, ModelConfig, TrainingConfig
from common.data import ImageSet

MODEL = ModelConfig(latent_dim=8, generator_width=8, discriminator_width=8)


def make_data(n=40, resolution=28, multi_label=False):
    rng = np.random.default_rng(0)
    labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)]
    return ImageSet(
        images=rng.integers(0, 256, (n, resolution, resolution), dtype=np.uint8),
        labels=labels,
        class_names=("a", "b"),
        multi_label=multi_label,
        patient_ids=np.array([f"p{i // 2}" for i in range(n)]),
    )


def make_trainer(
    data, noise=1.0, clip=1.0, rate=0.25, batch=8, secret_seed=None, architecture="dcgan"
):
    return DPGANTrainer(
        data,
        np.arange(len(data)).astype(str),
        ModelConfig(**{**vars(MODEL), "architecture": architecture}),
        TrainingConfig(batch_size=batch),
        DPSettings(noise, clip, rate),
        torch.device("cpu"),
        secret_seed,
    )


def flat_grad(module):
    return torch.cat([p.grad.flatten() for p in module.parameters()])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_private_and_non_private_training_take_steps(architecture):
    data = make_data()
    for noise in (1.0, 0.0):
        trainer = make_trainer(data, noise=noise, architecture=architecture)
        before = [p.clone() for p in trainer.discriminator.parameters()]

        losses = trainer.train(4)

        assert np.isfinite(losses["d_loss_fake"]) and np.isfinite(losses["g_loss"])
        assert trainer.step_count == 4
        assert any(
            not torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters())
        )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_one_record_moves_the_private_gradient_by_at_most_clip_over_batch(architecture):
    # DP-SGD's sensitivity: adding one (arbitrarily extreme) record changes the noise-free
    # gradient by at most C / B.
    torch.manual_seed(0)
    data = make_data()
    clip, batch = 0.05, 8
    trainer = make_trainer(data, noise=1e-12, clip=clip, batch=batch, architecture=architecture)
    real, condition = trainer.images[:6], trainer.labels[:6]
    fake, fake_condition = torch.randn(8, 1, 28, 28), trainer.labels[:8]
    outlier = torch.full((1, 1, 28, 28), 50.0)

    trainer.discriminator_gradients(real, condition, fake, fake_condition)
    without = flat_grad(trainer.discriminator).clone()
    trainer.discriminator_gradients(
        torch.cat([real, outlier]), torch.cat([condition, condition[:1]]), fake, fake_condition
    )
    with_outlier = flat_grad(trainer.discriminator)

    assert (with_outlier - without).norm() <= clip / batch + 1e-6


def test_noise_is_added_to_the_private_gradient():
    data = make_data()
    trainer = make_trainer(data, noise=1.0)
    real, condition = trainer.images[:4], trainer.labels[:4]
    fake, fake_condition = torch.randn(4, 1, 28, 28), trainer.labels[:4]

    trainer.discriminator_gradients(real, condition, fake, fake_condition)
    first = flat_grad(trainer.discriminator).clone()
    trainer.discriminator_gradients(real, condition, fake, fake_condition)

    assert not torch.allclose(first, flat_grad(trainer.discriminator))


def _batches_and_noise(trainer):
    batches = [trainer.sampler.sample() for _ in range(3)]
    noise = torch.randn(50, generator=trainer.d_optimizer.generator)
    return batches, noise


def test_a_site_draws_batches_and_noise_the_config_seed_cannot_reproduce():
    data = make_data()
    torch.manual_seed(0)
    first = _batches_and_noise(make_trainer(data))
    torch.manual_seed(0)
    second = _batches_and_noise(make_trainer(data))

    assert any(not np.array_equal(a, b) for a, b in zip(first[0], second[0]))
    assert not torch.equal(first[1], second[1])


def test_a_secret_seed_makes_batches_and_noise_reproducible():
    data = make_data()
    first = _batches_and_noise(make_trainer(data, secret_seed=3))
    second = _batches_and_noise(make_trainer(data, secret_seed=3))

    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0]))
    assert torch.equal(first[1], second[1])


def test_empty_poisson_batch_still_takes_a_noisy_step():
    data = make_data()
    trainer = make_trainer(data, rate=1e-9)
    before = [p.clone() for p in trainer.discriminator.parameters()]

    trainer.train(1)

    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters()))


def test_optimizer_state_round_trips():
    data = make_data()
    trainer = make_trainer(data)
    trainer.train(2)
    other = make_trainer(data)

    other.load(optimizers=trainer.optimizer_state())

    assert other.step_count == 2


@pytest.mark.parametrize("multi_label", [False, True])
def test_generated_conditions_come_from_a_public_prior(multi_label):
    conditions = sample_conditions(
        1000,
        num_classes=4,
        multi_label=multi_label,
        prior=0.25,
        generator=torch.Generator().manual_seed(0),
    )

    if multi_label:
        assert 0.2 < conditions.mean() < 0.3
    else:
        assert torch.all(conditions.sum(1) == 1)
        assert conditions.mean(0).min() > 0.2


def test_mode_seeking_penalty_is_large_for_a_collapsed_generator():
    z = torch.randn(8, 4)
    condition = torch.eye(2)[[0, 1, 0, 1, 0, 1, 0, 1]]
    collapsed = torch.zeros(8, 1, 28, 28)
    diverse = torch.randn(8, 1, 28, 28)

    assert mode_seeking_penalty(collapsed, z, condition) > 1000 * mode_seeking_penalty(
        diverse, z, condition
    )


def test_mode_seeking_penalty_catches_one_collapsed_class_among_diverse_ones():
    # Pairs (i, i + 4) share a condition; class 0 maps both latents of a pair to one image.
    z = torch.randn(8, 4)
    condition = torch.eye(2)[[0, 1, 0, 1, 0, 1, 0, 1]]
    images = torch.randn(8, 1, 28, 28)
    images[4:][condition[:4, 0] == 1] = images[:4][condition[:4, 0] == 1]
    diverse = torch.randn(8, 1, 28, 28)

    assert mode_seeking_penalty(images, z, condition) > 1000 * mode_seeking_penalty(
        diverse, z, condition
    )


def test_generator_trains_with_the_mode_seeking_term():
    trainer = make_trainer(make_data())
    trainer.training = TrainingConfig(batch_size=8, mode_seeking_weight=1.0)

    assert np.isfinite(trainer.generator_step())


def test_noise_on_the_gradient_has_the_calibrated_scale():
    # With no records and no generated rows the gradient is pure DP noise: std sigma*C/B.
    sigma, clip, batch = 1.3, 0.7, 8
    trainer = make_trainer(make_data(), noise=sigma, clip=clip, batch=batch)
    empty_images, empty_labels = trainer.images[:0], trainer.labels[:0]

    trainer.discriminator_gradients(empty_images, empty_labels, empty_images, empty_labels)

    noise = flat_grad(trainer.discriminator)
    assert noise.std().item() == pytest.approx(sigma * clip / batch, rel=0.05)
    assert abs(noise.mean().item()) < 0.1 * sigma * clip / batch


@pytest.mark.parametrize(("fake_logit", "expected_g_steps"), [(-50.0, 6), (50.0, 0)])
def test_adaptive_schedule_steps_the_generator_when_d_spots_its_images(
    fake_logit, expected_g_steps
):
    # A large score bias makes every logit (real and generated) -50 or +50: D then calls all
    # generated images fake (accuracy 1, G steps after every D step) or none (no G step).
    trainer = make_trainer(make_data(), noise=0.0)
    trainer.training = TrainingConfig(batch_size=8, generator_step_threshold=0.6)
    for group in trainer.base_d_optimizer.param_groups:
        group["lr"] = 0.0
    with torch.no_grad():
        trainer.discriminator.score.bias.fill_(fake_logit)

    losses = trainer.train(6)

    assert losses["g_steps"] == expected_g_steps


def test_augmentation_trains_both_private_and_non_private():
    for noise in (1.0, 0.0):
        trainer = make_trainer(make_data(), noise=noise)
        trainer.training = TrainingConfig(batch_size=8, augmentation=True)

        losses = trainer.train(4)

        assert np.isfinite(losses["d_loss_fake"]) and np.isfinite(losses["g_loss"])
