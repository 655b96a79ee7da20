"""The one place a device setting (auto | cpu | cuda) becomes a torch.device."""

import copy
from typing import TypeVar

import torch

from common.errors import UserError

# Where library calls that are given no device compute; results come back on it anyway.
CPU = torch.device("cpu")

T = TypeVar("T")


def resolve_device(name: str, *, key: str = "runtime.device") -> torch.device:
    """`auto` is the GPU when torch sees one, else the CPU; `cuda` without one is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"{key}=cuda, but torch sees no CUDA GPU on this machine "
                f"(torch {torch.__version__}); use {key}=cpu or auto"
            )
        return torch.device("cuda")
    raise UserError(f"{key}: must be one of auto, cpu, cuda; got {name!r}")


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a model's weights are: the device its inputs must be moved to."""
    return next(module.parameters()).device


def tensors_to(holder: T, device: torch.device) -> T:
    """A shallow copy of `holder` with every tensor attribute on `device`: for plain objects
    that hold tensors drawn on the CPU (e.g. common.mean_embedding's random features, and the
    prior's encoder), so that a GPU computes with exactly the CPU's draw."""
    moved = copy.copy(holder)
    for name, value in vars(holder).items():
        if isinstance(value, torch.Tensor):
            setattr(moved, name, value.to(device))
        elif isinstance(value, torch.nn.Module):  # e.g. a fixed encoder: its own copy
            setattr(moved, name, copy.deepcopy(value).to(device))
    return moved
