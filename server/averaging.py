"""Weighted averages of model weights."""

import torch

StateDict = dict[str, torch.Tensor]


def weighted_average(states: list[StateDict], weights: list[float]) -> StateDict:
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    return {
        key: sum(state[key].double() * (w / total) for state, w in zip(states, weights)).to(
            states[0][key].dtype
        )
        for key in states[0]
    }
