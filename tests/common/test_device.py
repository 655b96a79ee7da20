"""The device setting: auto, cpu or cuda, and a clear error for a GPU torch does not see.

On the machines the tests run on torch sees no GPU, so `auto` is the CPU and `cuda` an error.
"""

import pytest
import torch
from torch import nn

from common.device import module_device, resolve_device, tensors_to
from common.errors import UserError


@pytest.mark.parametrize("name", ["auto", "cpu"])
def test_auto_and_cpu_are_the_cpu_without_a_gpu(name):
    device = resolve_device(name)

    assert device == torch.device("cpu")


def test_cuda_without_a_gpu_names_the_key_and_the_settings_that_work():
    with pytest.raises(UserError) as error:
        resolve_device("cuda", key="--device")

    message = str(error.value)
    assert message.startswith("--device=cuda")
    assert "no CUDA GPU" in message and "use --device=cpu or auto" in message


def test_an_unknown_device_lists_the_choices():
    with pytest.raises(UserError, match="runtime.device: must be one of auto, cpu, cuda"):
        resolve_device("tpu")


def test_a_models_device_is_where_its_weights_are():
    model = nn.Linear(2, 1)

    assert module_device(model) == torch.device("cpu")


def test_tensors_to_is_a_copy_with_its_tensors_on_the_device():
    class Holder:
        def __init__(self) -> None:
            self.weights = torch.ones(2)
            self.dim = 2

    original = Holder()

    moved = tensors_to(original, torch.device("cpu"))

    assert moved is not original
    assert torch.equal(moved.weights, original.weights) and moved.dim == 2
    assert moved.weights.device == torch.device("cpu")
