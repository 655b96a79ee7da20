"""An equal mixture of generators with the generator interface (the mean-embedding fit)."""

import torch
from torch import nn


class GeneratorMixture(nn.Module):
    """An equal mixture of K generators with the Generator interface, for the mean-embedding
    fit: each component is fitted on its own to the same targets, so their errors differ and
    the mixture's mean embedding, the average of theirs, is closer to the target than the
    average component is (convexity of the squared distance), and its variety is theirs
    together.

    The first latent coordinate picks the component: u = Phi(z_0) is uniform, the component
    is floor(u K), and z_0 becomes Phi^-1 of u's place within that component's share, so each
    component again sees z ~ N(0, I), and an image stays a function of (z, condition)."""

    def __init__(self, components: list[nn.Module], resolution: int) -> None:
        super().__init__()
        self.components = nn.ModuleList(components)
        self.latent_dim = components[0].latent_dim
        self.resolution = resolution

    def assign(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(component index per row, the latents each component sees)."""
        scaled = torch.special.ndtr(z[:, 0]) * len(self.components)
        index = scaled.floor().clamp(max=len(self.components) - 1)
        inner = torch.special.ndtri((scaled - index).clamp(1e-7, 1 - 1e-7))
        return index.long(), torch.cat([inner[:, None], z[:, 1:]], dim=1)

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        index, z = self.assign(z)
        images = z.new_zeros(len(z), 1, self.resolution, self.resolution)
        for k, component in enumerate(self.components):
            rows = (index == k).nonzero().squeeze(1)
            if len(rows):
                images = images.index_put((rows,), component(z[rows], condition[rows]))
        return images


def components_of(generator: nn.Module) -> list[nn.Module]:
    """The generators a mixture is made of; a single generator is its own only component."""
    return list(generator.components) if isinstance(generator, GeneratorMixture) else [generator]
