import copy
import gc
import weakref

import numpy as np
import pytest
import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from torch import nn
from torch.nn import functional as F

import client.per_sample_clipping as per_sample_clipping
from client.per_sample_clipping import PerSampleClipping
from client.training import DPGANTrainer, DPSettings
from common.config import ModelConfig, TrainingConfig
from common.data import ImageSet
from common.models import build_models

# Opacus' hooks fire on D's outputs while the images need no gradient; that is expected.
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")

CASES = [
    (architecture, resolution, width, rows)
    for architecture in ("dcgan", "resnet")
    for resolution, width, rows in ((28, 8, 6), (32, 8, 6), (64, 8, 5), (128, 4, 3))
]


def discriminator(architecture, resolution, width=8, seed=0):
    torch.manual_seed(seed)
    model = ModelConfig(architecture=architecture, discriminator_width=width)
    return build_models(2, resolution, model)[1]


def batch(rows, resolution, seed=1):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(rows, 1, resolution, resolution, generator=generator)
    return images, torch.eye(2)[torch.randint(0, 2, (rows,), generator=generator)]


def summed_loss(logits):
    # The trainer's loss: a sum of per-row terms (real rows first, then generated ones).
    half = len(logits) // 2
    return F.softplus(-logits[:half]).sum() + F.softplus(logits[half:]).sum()


def opacus_per_sample_gradients(module, inputs, loss_of=summed_loss):
    wrapped = GradSampleModule(copy.deepcopy(module), loss_reduction="sum")
    loss_of(wrapped(*inputs)).backward()
    return [p.grad_sample for p in wrapped.parameters() if p.requires_grad]


def total_norms(per_sample_gradients):
    return torch.stack([g.flatten(1).norm(dim=1) for g in per_sample_gradients], 1).norm(dim=1)


def engine_step(engine, module, inputs, loss_of=summed_loss):
    with engine.record():
        output = module(*inputs)
    engine.backward(loss_of(output))


def flat_grad(module):
    return torch.cat([p.grad.flatten() for p in module.parameters()])


@pytest.mark.parametrize(("architecture", "resolution", "width", "rows"), CASES)
def test_per_sample_norms_equal_opacus(architecture, resolution, width, rows):
    module = discriminator(architecture, resolution, width)
    inputs = batch(rows, resolution)
    expected = total_norms(opacus_per_sample_gradients(module, inputs))
    engine = PerSampleClipping(module, max_grad_norm=1.0)

    engine_step(engine, module, inputs)

    torch.testing.assert_close(engine.per_sample_norms, expected, rtol=1e-4, atol=0)


@pytest.mark.parametrize("architecture", ["dcgan", "resnet"])
def test_a_batch_of_one_row_has_its_exact_norm(architecture):
    module = discriminator(architecture, 28)
    inputs = batch(1, 28)
    expected = total_norms(opacus_per_sample_gradients(module, inputs))
    engine = PerSampleClipping(module, max_grad_norm=1.0)

    engine_step(engine, module, inputs)

    torch.testing.assert_close(engine.per_sample_norms, expected, rtol=1e-4, atol=0)


def clip_between(norms):
    """A clip norm that some rows exceed and some do not."""
    return float(norms.median())


def opacus_clipped_mean(module, inputs, *, clip, expected_batch_size, loss_of=summed_loss):
    wrapped = GradSampleModule(copy.deepcopy(module), loss_reduction="sum")
    optimizer = DPOptimizer(
        torch.optim.SGD(wrapped.parameters(), lr=0.0),
        noise_multiplier=0.0,
        max_grad_norm=clip,
        expected_batch_size=expected_batch_size,
    )
    loss_of(wrapped(*inputs)).backward()
    optimizer.pre_step()
    return torch.cat([p.grad.flatten() for p in wrapped.parameters()])


def engine_noised_mean(module, inputs, *, clip, noise, expected_batch_size, seed=0):
    engine = PerSampleClipping(module, max_grad_norm=clip)
    optimizer = DPOptimizerFastGradientClipping(
        torch.optim.SGD(module.parameters(), lr=0.0),
        noise_multiplier=noise,
        max_grad_norm=clip,
        expected_batch_size=expected_batch_size,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer.zero_grad(set_to_none=True)
    engine_step(engine, module, inputs)
    optimizer.pre_step()
    return flat_grad(module), engine.per_sample_norms


@pytest.mark.parametrize(("architecture", "resolution"), [("dcgan", 32), ("resnet", 28)])
def test_zero_noise_gives_opacus_clipped_mean(architecture, resolution):
    module = discriminator(architecture, resolution)
    inputs = batch(8, resolution)
    clip = clip_between(total_norms(opacus_per_sample_gradients(module, inputs)))
    expected = opacus_clipped_mean(module, inputs, clip=clip, expected_batch_size=5)

    released, norms = engine_noised_mean(
        module, inputs, clip=clip, noise=0.0, expected_batch_size=5
    )

    assert (norms > clip).any() and (norms < clip).any()
    torch.testing.assert_close(released, expected, rtol=1e-4, atol=1e-7)


def test_noise_has_std_sigma_clip_over_expected_batch_size():
    module = discriminator("dcgan", 64, width=16)
    sigma, clip, expected_batch_size = 1.3, 0.7, 8
    empty = batch(0, 64)  # no rows: what is released is the noise alone

    noise, _ = engine_noised_mean(
        module, empty, clip=clip, noise=sigma, expected_batch_size=expected_batch_size
    )

    scale = sigma * clip / expected_batch_size
    assert noise.std().item() == pytest.approx(scale, rel=0.05)
    assert abs(noise.mean().item()) < 0.05 * scale


class Mixed(nn.Module):
    """Layers the discriminators do not use: dilation, no padding, a 1x1 convolution without
    bias, a Linear over several positions, a frozen bias."""

    def __init__(self) -> None:
        super().__init__()
        self.wide = nn.Conv2d(2, 6, 3, dilation=2, stride=(2, 1))
        self.pointwise = nn.Conv2d(6, 4, 1, bias=False)
        self.tokens = nn.Linear(5, 3)
        self.tokens.bias.requires_grad_(False)
        self.out = nn.Linear(3 * 4 * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pointwise(F.relu(self.wide(x)))  # (B, 4, 2, 5)
        h = self.tokens(h.flatten(1, 2))  # (B, 8, 3)
        return self.out(torch.tanh(h).flatten(1)).squeeze(1)


@pytest.mark.parametrize(
    ("ghost_speed", "keep_numbers"), [(0.0, 1 << 23), (0.0, 0), (float("inf"), 1 << 23)]
)
def test_direct_and_ghost_norms_both_equal_opacus(monkeypatch, ghost_speed, keep_numbers):
    # Ghost speed 0: every layer forms per-sample gradients, kept for the clipped sum or, with
    # nothing kept, formed a few rows at a time; inf: every layer takes the ghost norm.
    monkeypatch.setattr(per_sample_clipping, "GHOST_SPEED", ghost_speed)
    monkeypatch.setattr(per_sample_clipping, "KEEP_NUMBERS", keep_numbers)
    monkeypatch.setattr(per_sample_clipping, "CHUNK_NUMBERS", 1)
    torch.manual_seed(0)
    module = Mixed()
    inputs = (torch.randn(7, 2, 8, 9),)
    per_sample = opacus_per_sample_gradients(module, inputs)
    clip = clip_between(total_norms(per_sample))
    factors = (clip / (total_norms(per_sample) + 1e-6)).clamp(max=1.0)
    engine = PerSampleClipping(module, max_grad_norm=clip)

    engine_step(engine, module, inputs)

    trainable = [p for p in module.parameters() if p.requires_grad]
    torch.testing.assert_close(engine.per_sample_norms, total_norms(per_sample), rtol=1e-4, atol=0)
    for parameter, gradients in zip(trainable, per_sample):
        expected = torch.einsum("i,i...->...", factors, gradients)
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-4, atol=1e-7)
    assert module.tokens.bias.grad is None


def test_inputs_that_need_gradients_leave_the_norms_exact():
    torch.manual_seed(0)
    module = Mixed()
    images = torch.randn(4, 2, 8, 9, requires_grad=True)
    expected = total_norms(opacus_per_sample_gradients(module, (images,)))
    engine = PerSampleClipping(module, max_grad_norm=1.0)

    engine_step(engine, module, (images,))

    torch.testing.assert_close(engine.per_sample_norms, expected, rtol=1e-4, atol=0)


@pytest.mark.parametrize(
    ("layer", "named"),
    [
        (nn.BatchNorm2d(3), "BatchNorm2d"),
        (nn.BatchNorm2d(3, affine=False), "BatchNorm2d"),
        (nn.Embedding(4, 3), "Embedding"),
        (nn.Conv2d(3, 3, 3, groups=3), "grouped"),
        (nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"), "padding_mode"),
    ],
)
def test_unsupported_layers_are_refused(layer, named):
    module = nn.Sequential(nn.Conv2d(1, 3, 3), layer)

    with pytest.raises(ValueError, match=named):
        PerSampleClipping(module, max_grad_norm=1.0)


def test_a_parameter_outside_any_layer_is_refused():
    module = nn.Linear(2, 2)
    module.register_parameter("scale", nn.Parameter(torch.ones(1)))
    container = nn.Sequential(module)
    container.register_parameter("offset", nn.Parameter(torch.zeros(1)))

    with pytest.raises(ValueError, match="scale") as refused:
        PerSampleClipping(container, max_grad_norm=1.0)

    assert "Sequential" in str(refused.value)


def test_a_frozen_unsupported_layer_is_allowed():
    module = nn.Sequential(nn.Embedding(4, 3), nn.Linear(3, 1))
    module[0].weight.requires_grad_(False)

    engine = PerSampleClipping(module, max_grad_norm=1.0)

    assert engine.layers == [module[1]]


def test_a_layer_run_twice_is_refused():
    layer = nn.Linear(3, 3)
    engine = PerSampleClipping(layer, max_grad_norm=1.0)

    with pytest.raises(ValueError, match="ran twice"), engine.record():
        layer(layer(torch.randn(2, 3)))


def test_an_output_changed_in_place_is_refused():
    layer = nn.Linear(3, 3)
    engine = PerSampleClipping(layer, max_grad_norm=1.0)
    with engine.record():
        output = layer(torch.randn(2, 3))
    output.mul_(2)

    with pytest.raises(ValueError, match="in place"):
        engine.backward(output.sum())


def test_outside_record_the_module_runs_without_hooks():
    module = discriminator("dcgan", 28)
    engine = PerSampleClipping(module, max_grad_norm=1.0)
    with engine.record():
        module(*batch(2, 28))

    hooked = [m for m in module.modules() if m._forward_hooks]

    assert hooked == []


def test_a_step_lets_go_of_the_layer_outputs_without_the_garbage_collector():
    # A reference cycle through an output would hold it and the graph behind it until the
    # collector runs: megabytes a step, and fresh memory to fault in at the next one.
    module = discriminator("dcgan", 28)
    engine = PerSampleClipping(module, max_grad_norm=1.0)
    outputs = []
    module.features[0].register_forward_hook(lambda *args: outputs.append(weakref.ref(args[2])))
    gc.disable()
    try:
        engine_step(engine, module, batch(4, 28))

        assert outputs[0]() is None
    finally:
        gc.enable()


def make_trainer(architecture, resolution=28):
    rng = np.random.default_rng(0)
    data = ImageSet(
        images=rng.integers(0, 256, (20, resolution, resolution), dtype=np.uint8),
        labels=np.eye(2, dtype=np.float32)[rng.integers(0, 2, 20)],
        class_names=("a", "b"),
        multi_label=False,
    )
    return DPGANTrainer(
        data,
        np.arange(20).astype(str),
        ModelConfig(architecture=architecture, latent_dim=8, generator_width=8),
        TrainingConfig(batch_size=4),
        DPSettings(noise_multiplier=1e-12, max_grad_norm=0.05, sample_rate=0.2),
        torch.device("cpu"),
        secret_seed=0,
    )


@pytest.mark.parametrize("architecture", ["dcgan", "resnet"])
def test_trainer_step_with_no_real_rows_releases_the_clipped_mean(architecture):
    trainer = make_trainer(architecture)
    fake, condition = batch(3, 28)
    no_rows = trainer.images[:0]
    expected = opacus_clipped_mean(
        trainer.discriminator,
        (fake, condition),
        clip=0.05,
        expected_batch_size=4,
        loss_of=lambda logits: F.softplus(logits).sum(),  # every row is a generated one
    )

    trainer.discriminator_gradients(no_rows, trainer.labels[:0], fake, condition)

    torch.testing.assert_close(flat_grad(trainer.discriminator), expected, rtol=1e-4, atol=1e-7)
    assert len(trainer.clipping.per_sample_norms) == 3
