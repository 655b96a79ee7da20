"""The one place a device setting (auto | cpu | cuda) becomes a torch.device."""

import torch

from common.errors import UserError


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
