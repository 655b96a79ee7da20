"""Local DP-GAN training at one site, independent of Flower.

Each local step is one DP-SGD step of the discriminator (per-sample clipping by
client/per_sample_clipping.py, Gaussian noise by Opacus, over a Poisson-sampled batch of
private records); every
`discriminator_steps_per_generator_step` steps the site's generator copy takes one step
through the discriminator, which is post-processing of a DP output. Several D steps per
G step is what makes DP-SGD GANs work (Bie et al. 2023, "DP-GAN revisited"). With
`generator_step_threshold` set, the generator instead steps whenever D tells the step's
generated images apart at least that often, as Bie et al. adapt it; the test looks at generated
images only, so it costs no privacy.

The sensitivity of a step to one private record is C / B whatever the generated images
are: each row's gradient is clipped separately.
"""

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch.nn import functional as F

from client.augment import augment
from client.memory import keep_freed_memory
from client.per_sample_clipping import PerSampleClipping
from client.sampling import PoissonSampler
from common.conditions import sample_conditions
from common.config import ModelConfig, TrainingConfig
from common.data import ImageSet
from common.models import build_models


def to_tensors(data: ImageSet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(data.images).to(device=device, dtype=torch.float32)
    images = (images / 127.5 - 1.0).unsqueeze(1)
    return images, torch.from_numpy(data.labels).to(device=device, dtype=torch.float32)


def mode_seeking_penalty(
    images: torch.Tensor, z: torch.Tensor, condition: torch.Tensor
) -> torch.Tensor:
    """MSGAN's 1 / (image distance / latent distance) over paired halves of a batch, whose
    pairs share a condition. The ratio is averaged per condition before it is inverted: over
    the whole batch, diverse pairs of one class would hide a class that ignores its latent."""
    half = len(images) // 2
    image_distance = (images[:half] - images[half : 2 * half]).abs().mean(dim=(1, 2, 3))
    latent_distance = (z[:half] - z[half : 2 * half]).abs().mean(dim=1)
    _, group = torch.unique(condition[:half], dim=0, return_inverse=True)
    groups = int(group.max()) + 1
    ratio_sum = torch.zeros(groups, device=images.device).index_add(
        0, group, image_distance / latent_distance
    )
    return (1.0 / (ratio_sum / torch.bincount(group) + 1e-5)).mean()


@dataclass(frozen=True)
class DPSettings:
    """noise_multiplier 0 means non-private training (no clipping, no noise)."""

    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float

    @property
    def private(self) -> bool:
        return self.noise_multiplier > 0


class DPGANTrainer:
    """A site's discriminator (DP) and generator copy, with their optimizers."""

    def __init__(
        self,
        data: ImageSet,
        unit_keys: np.ndarray,
        model: ModelConfig,
        training: TrainingConfig,
        dp: DPSettings,
        device: torch.device,
        secret_seed: int | None = None,
    ) -> None:
        keep_freed_memory()  # steps reuse the memory of the step before
        self.model_config = model
        self.training = training
        self.dp = dp
        self.device = device
        self.multi_label = data.multi_label
        self.num_classes = data.num_classes
        self.images, self.labels = to_tensors(data, device)
        # Batch membership and DP noise must be secret from the server, so a site draws both
        # from OS entropy (secret_seed None) rather than from the (shared) config seed. Only
        # the DP audit, which releases nothing, fixes secret_seed to be reproducible.
        sampler_seed, fake_seed, noise_seed = (
            int(s) for s in np.random.SeedSequence(secret_seed).generate_state(3, np.uint64)
        )
        self.sampler = PoissonSampler(
            unit_keys, dp.sample_rate, np.random.default_rng(sampler_seed)
        )
        self.torch_rng = torch.Generator().manual_seed(fake_seed)
        generator, discriminator = build_models(data.num_classes, data.resolution, model)
        self.generator = generator.to(device)
        self.discriminator = discriminator.to(device)
        betas = (training.beta1, training.beta2)
        self.g_optimizer = torch.optim.Adam(
            self.generator.parameters(), lr=training.generator_lr, betas=betas
        )
        d_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=training.discriminator_lr, betas=betas
        )
        self.base_d_optimizer = d_optimizer
        self.clipping: PerSampleClipping | None = None
        self.d_optimizer: torch.optim.Optimizer = d_optimizer
        if dp.private:
            self.clipping = PerSampleClipping(self.discriminator, max_grad_norm=dp.max_grad_norm)
            # Takes the clipped sum from .grad, adds the noise and divides by the expected
            # batch size.
            self.d_optimizer = DPOptimizerFastGradientClipping(
                d_optimizer,
                noise_multiplier=dp.noise_multiplier,
                max_grad_norm=dp.max_grad_norm,
                expected_batch_size=training.batch_size,
                loss_reduction="mean",
                generator=torch.Generator(device=device).manual_seed(noise_seed),
            )
        self.step_count = 0

    # ---- state ------------------------------------------------------------------------

    def load(
        self,
        generator: dict | None = None,
        discriminator: dict | None = None,
        optimizers: dict | None = None,
    ) -> None:
        if generator is not None:
            self.generator.load_state_dict(generator)
        if discriminator is not None:
            self.discriminator.load_state_dict(discriminator)
        if optimizers is not None:
            self.g_optimizer.load_state_dict(optimizers["generator"])
            self.base_d_optimizer.load_state_dict(optimizers["discriminator"])
            self.step_count = optimizers["step"]

    def optimizer_state(self) -> dict:
        return {
            "generator": self.g_optimizer.state_dict(),
            "discriminator": self.base_d_optimizer.state_dict(),
            "step": self.step_count,
        }

    # ---- training ---------------------------------------------------------------------

    def _fake_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.model_config.latent_dim, generator=self.torch_rng)
        condition = sample_conditions(
            n,
            num_classes=self.num_classes,
            multi_label=self.multi_label,
            prior=self.model_config.multilabel_prior,
            generator=self.torch_rng,
        )
        return z.to(self.device), condition.to(self.device)

    def discriminator_gradients(
        self,
        real: torch.Tensor,
        real_condition: torch.Tensor,
        fake: torch.Tensor,
        fake_condition: torch.Tensor,
    ) -> tuple[float, float]:
        """Set D's .grad for one step; returns D's (loss, accuracy) on the generated images.

        One forward pass over [real; generated] gives one per-sample gradient per row.
        Private: every row is clipped to C, the sum gets N(0, (sigma*C)^2) noise once and is
        divided by the expected batch size. Generated rows hold no private data; clipping them
        too keeps the real and generated terms on the same scale, as in the non-private loss.
        """
        n = len(real)
        images = torch.cat([real, fake])
        with self.clipping.record() if self.clipping else nullcontext():
            logits = self.discriminator(images, torch.cat([real_condition, fake_condition]))
        fake_loss = F.softplus(logits[n:])
        loss = (F.softplus(-logits[:n]).sum() + fake_loss.sum()) / (
            1 if self.dp.private else self.training.batch_size
        )
        self.d_optimizer.zero_grad(set_to_none=True)
        if self.clipping is None:
            loss.backward()
        else:
            self.clipping.backward(loss)
            self.d_optimizer.pre_step()
        fake_logits = logits[n:].detach()
        return float(fake_loss.detach().mean()), float((fake_logits < 0).float().mean())

    def discriminator_step(self) -> tuple[float, float]:
        """One DP-SGD step of D on a Poisson-sampled batch of private records."""
        batch = torch.from_numpy(self.sampler.sample()).to(self.device)
        z, fake_condition = self._fake_batch(self.training.batch_size)
        with torch.no_grad():
            fake = self.generator(z, fake_condition)
        real = self.images[batch]
        if self.training.augmentation:
            real, fake = augment(real, self.torch_rng), augment(fake, self.torch_rng)
        result = self.discriminator_gradients(real, self.labels[batch], fake, fake_condition)
        self.base_d_optimizer.step()
        return result

    def generator_step(self) -> float:
        """One generator step through D (post-processing of D, no private data).

        With `mode_seeking_weight` > 0, pairs of latents share a condition and the generator
        is rewarded for mapping different latents to different images (Mao et al. 2019),
        against the mode collapse a noisy DP discriminator invites.
        """
        half = max(1, self.training.batch_size // 2)
        z, condition = self._fake_batch(half)
        z = torch.cat([z, torch.randn(z.shape, generator=self.torch_rng).to(self.device)])
        condition = torch.cat([condition, condition])
        images = self.generator(z, condition)
        seen = augment(images, self.torch_rng) if self.training.augmentation else images
        adversarial = F.softplus(-self.discriminator(seen, condition)).mean()
        loss = adversarial
        if self.training.mode_seeking_weight > 0:
            loss = loss + self.training.mode_seeking_weight * mode_seeking_penalty(
                images, z, condition
            )
        self.g_optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.generator.parameters()))
        self.g_optimizer.step()
        return float(adversarial.detach())

    def train(self, steps: int, on_step: Callable[[], None] | None = None) -> dict[str, float]:
        """`steps` discriminator steps with generator steps interleaved; mean losses."""
        d_losses, g_losses = [], []
        every = self.training.discriminator_steps_per_generator_step
        threshold = self.training.generator_step_threshold
        self.generator.train()
        for _ in range(steps):
            loss, fake_accuracy = self.discriminator_step()
            d_losses.append(loss)
            self.step_count += 1
            if fake_accuracy >= threshold if threshold else self.step_count % every == 0:
                g_losses.append(self.generator_step())
            if on_step is not None:
                on_step()
        return {
            "d_loss_fake": float(np.mean(d_losses)) if d_losses else float("nan"),
            "g_loss": float(np.mean(g_losses)) if g_losses else float("nan"),
            "g_steps": float(len(g_losses)),
        }
