"""An exponential moving average of a model's weights, for the generators this project keeps:
a GAN's or a fit's averaged generator draws cleaner images than its last iterate (Yazici et
al. 2019)."""

import copy

import torch


class WeightAverage:
    """The average lives in `model`, a copy of `source`; buffers are copied as they are."""

    def __init__(self, model: torch.nn.Module, *, decay: float) -> None:
        self.source = model
        self.model = copy.deepcopy(model).eval()
        self.decay = decay

    @torch.no_grad()
    def update(self) -> None:
        for average, current in zip(self.model.parameters(), self.source.parameters()):
            average.lerp_(current, 1.0 - self.decay)
        for average, current in zip(self.model.buffers(), self.source.buffers()):
            average.copy_(current)
