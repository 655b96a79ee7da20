"""Exact DP-SGD per-sample clipping from one forward and one backward pass.

DP-SGD needs each row's gradient norm ||g_i|| over all parameters and the sum of the
clipped gradients sum_i c_i g_i, c_i = min(1, C / ||g_i||). For a linear layer (a
convolution is one at each output position l), row i's weight gradient is
g_i = sum_l e_il a_il^T, from the layer's input activations a (kept by a forward hook)
and the loss's gradient e with respect to its output (caught by a hook on the output as the
backward pass reaches it). Per layer the squared norm comes from whichever is cheaper
(mixed ghost clipping, Bu et al. 2022):

- direct: g_i itself, ~ B L d p multiply-adds for L positions, d = C_in k k inputs and
  p = C_out outputs, formed a few rows at a time;
- ghost: ||g_i||^2 = sum_{l,l'} (a_il . a_il') (e_il . e_il'), Gram matrices over positions,
  ~ B L^2 (d + p), never forming g_i.

A row whose norm is not finite (NaN or overflow anywhere in its gradient) counts as zero, so
every row's contribution is finite with norm at most C whatever the weights. Then
sum_i c_i g_i is the c-weighted sum of the g_i where they were formed and are few
enough to keep, or else the layer's ordinary weight gradient for the output gradients scaled
row by row by c_i (book-keeping, Bu et al. 2023): no second backward pass. The backward
pass itself runs with respect to layer outputs only, so autograd never spends time on the
unclipped weight gradients, which would be thrown away.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm

# Opacus' DPOptimizer clips with C / (norm + 1e-6); the same keeps the two interchangeable.
NORM_EPSILON = 1e-6

# The ghost norm's many small Gram products run at about this fraction of the speed of the
# convolution kernels that form per-sample gradients (measured on CPU).
GHOST_SPEED = 0.6

# Per-sample work that is not kept is done a few rows at a time, its temporaries bounded by
# about this many numbers, so that they stay in cache.
CHUNK_NUMBERS = 1 << 18

# A layer's per-sample gradients, where formed, are formed for all rows at once and kept for
# the clipped sum when they hold at most this many numbers.
KEEP_NUMBERS = 1 << 23

SUPPORTED = "nn.Linear and nn.Conv2d (groups=1, padding_mode='zeros', integer padding)"


def _unsupported_reason(layer: nn.Module) -> str | None:
    """Why a layer's parameters cannot be clipped here; None when they can. Exact types only:
    a subclass may change what forward computes."""
    if type(layer) is nn.Linear:
        return None
    if type(layer) is not nn.Conv2d:
        return f"{type(layer).__name__} is not supported"
    if layer.groups != 1:
        return "grouped convolutions are not supported"
    if layer.padding_mode != "zeros":
        return f"padding_mode {layer.padding_mode!r} is not supported"
    if isinstance(layer.padding, str):
        return f"padding {layer.padding!r} is not supported; give it as integers"
    return None


def supported_layers(module: nn.Module) -> list[nn.Module]:
    """The layers holding `module`'s trainable parameters; raises if any such parameter sits
    in a layer this engine cannot clip (it would leave DP-SGD silently unclipped) or if a
    layer mixes the rows of a batch (per-sample gradients are then undefined)."""
    layers, problems = [], []
    for name, layer in module.named_modules():
        where = name or "the module"
        if isinstance(layer, _BatchNorm):
            problems.append(f"{where} ({type(layer).__name__}) mixes the rows of a batch")
            continue
        trainable = [n for n, p in layer.named_parameters(recurse=False) if p.requires_grad]
        if not trainable:
            continue
        reason = _unsupported_reason(layer)
        if reason is None and set(trainable) - {"weight", "bias"}:
            reason = f"parameters {sorted(set(trainable) - {'weight', 'bias'})} are not supported"
        if reason is None:
            layers.append(layer)
        else:
            problems.append(f"{where}: {reason}")
    if problems:
        raise ValueError(
            f"per-sample clipping supports only {SUPPORTED}, and no batch normalisation; "
            + "; ".join(problems)
        )
    return layers


def _is_pointwise(layer: nn.Module) -> bool:
    """Whether the layer's activations per position are its input as it is (no unfolding)."""
    if isinstance(layer, nn.Linear):
        return True
    return layer.kernel_size == (1, 1) and layer.stride == (1, 1) and layer.padding == (0, 0)


def _activations(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Input activations per position, (B, d, L). A convolution's d inputs of a position come
    kernel offset first, then channel, not in its weight's order: they serve only Gram
    matrices over positions, which any fixed order of the d inputs leaves unchanged."""
    if isinstance(layer, nn.Linear):
        return x.reshape(len(x), -1, x.shape[-1]).transpose(1, 2)
    if _is_pointwise(layer):
        return x.flatten(2)
    # A strided view of the padded input, copied once: cheaper on a CPU than F.unfold, and
    # cheaper still with the channels innermost, where the copy moves runs of them at a time.
    (ph, pw), (kh, kw), (dh, dw), (sh, sw) = (
        layer.padding,
        layer.kernel_size,
        layer.dilation,
        layer.stride,
    )
    padded = F.pad(x, (pw, pw, ph, ph)).contiguous(memory_format=torch.channels_last)
    patches = padded.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)
    patches = patches[..., ::dh, ::dw]  # (B, C, H', W', kh, kw)
    rows, channels, height, width = patches.shape[:4]
    by_position = patches.permute(0, 2, 3, 4, 5, 1).reshape(
        rows, height * width, kh * kw * channels
    )
    return by_position.transpose(1, 2)


def _output_gradients(layer: nn.Module, gradient: torch.Tensor) -> torch.Tensor:
    """Output gradients per position, (B, p, L)."""
    if isinstance(layer, nn.Linear):
        return gradient.reshape(len(gradient), -1, gradient.shape[-1]).transpose(1, 2)
    return gradient.flatten(2)


def _convolution_weight_gradient(
    layer: nn.Module, x: torch.Tensor, gradient: torch.Tensor, *, groups: int = 1
) -> torch.Tensor:
    """The weight gradient of `layer`'s convolution, or of `groups` side-by-side copies of
    it over inputs and outputs stacked along channels (only the weight's shape is read)."""
    weight = layer.weight
    if groups > 1:
        weight = weight.new_empty(groups * weight.shape[0], *weight.shape[1:])
    _, result, _ = torch.ops.aten.convolution_backward(
        gradient,
        x,
        weight,
        None,
        layer.stride,
        layer.padding,
        layer.dilation,
        False,
        [0, 0],
        groups,
        [False, True, False],
    )
    return result


def _weight_gradient(layer: nn.Module, x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """The layer's ordinary weight gradient (summed over rows) for output gradient `gradient`."""
    if isinstance(layer, nn.Linear):
        return gradient.reshape(-1, gradient.shape[-1]).T @ x.reshape(-1, x.shape[-1])
    return _convolution_weight_gradient(layer, x, gradient)


def _per_sample_weight_gradients(
    layer: nn.Module, x: torch.Tensor, gradient: torch.Tensor
) -> torch.Tensor:
    """Each row's weight gradient, flat: (B, p * d)."""
    if _is_pointwise(layer):
        a, e = _activations(layer, x), _output_gradients(layer, gradient)
        return torch.bmm(e, a.transpose(1, 2)).flatten(1)
    # A convolution whose groups are the rows has the per-sample gradients for its weight
    # gradient: as fast as the ordinary one where positions are many, while unfolding the
    # input for a batched product would copy it k*k times over.
    rows = len(x)
    return _convolution_weight_gradient(
        layer,
        x.reshape(1, rows * x.shape[1], *x.shape[2:]),
        gradient.reshape(1, rows * gradient.shape[1], *gradient.shape[2:]),
        groups=rows,
    ).view(rows, -1)


def _prefers_ghost(*, positions: int, inputs: int, outputs: int) -> bool:
    """Whether the ghost norm is cheaper than per-sample gradients for one layer."""
    ghost = positions**2 * (inputs + outputs)
    return ghost < GHOST_SPEED * positions * inputs * outputs


def _row_chunks(rows: int, numbers_per_row: int) -> list[slice]:
    step = max(1, CHUNK_NUMBERS // numbers_per_row)
    return [slice(start, start + step) for start in range(0, rows, step)]


def _ghost_squared_norms(layer: nn.Module, x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    def chunk_norms(rows: slice) -> torch.Tensor:
        a, e = _activations(layer, x[rows]), _output_gradients(layer, gradient[rows])
        grams = torch.bmm(a.transpose(1, 2), a) * torch.bmm(e.transpose(1, 2), e)
        return grams.sum((1, 2))

    positions = _output_gradients(layer, gradient).shape[2]
    inputs = layer.weight[0].numel()
    chunks = _row_chunks(len(x), positions * (inputs + 2 * positions))
    return torch.cat([chunk_norms(c) for c in chunks])


def _direct_squared_norms(
    layer: nn.Module, x: torch.Tensor, gradient: torch.Tensor
) -> torch.Tensor:
    """From per-sample gradients formed a few rows at a time and let go."""

    def chunk_norms(rows: slice) -> torch.Tensor:
        per_sample = _per_sample_weight_gradients(layer, x[rows], gradient[rows])
        return torch.linalg.vector_norm(per_sample, dim=1)

    chunks = _row_chunks(len(x), layer.weight.numel())
    return torch.cat([chunk_norms(c) for c in chunks]).square()


def _trainable(parameter: nn.Parameter | None) -> bool:
    return parameter is not None and parameter.requires_grad


class _LayerStep:
    """One layer's part of a step: its rows' squared gradient norms, then its clipped sums.

    Where per-sample weight gradients are formed and few enough (KEEP_NUMBERS), they are kept:
    their clip-weighted sum over rows is much cheaper than a second weight gradient from
    scaled output gradients.
    """

    def __init__(self, layer: nn.Module, x: torch.Tensor, gradient: torch.Tensor) -> None:
        self.layer, self.x, self.gradient = layer, x, gradient
        e = _output_gradients(layer, gradient)
        self.ghost = _prefers_ghost(
            positions=e.shape[2], inputs=layer.weight[0].numel(), outputs=e.shape[1]
        )
        self.keeps = (
            not self.ghost
            and _trainable(layer.weight)
            and len(x) * layer.weight.numel() <= KEEP_NUMBERS
        )
        self.kept: torch.Tensor | None = None
        self.per_sample_bias = e.sum(2) if _trainable(layer.bias) else None

    def squared_norms(self) -> torch.Tensor:
        squared = self.gradient.new_zeros(len(self.x))
        if self.keeps:
            self.kept = _per_sample_weight_gradients(self.layer, self.x, self.gradient)
            squared += torch.linalg.vector_norm(self.kept, dim=1).square()
        elif _trainable(self.layer.weight):
            norms = _ghost_squared_norms if self.ghost else _direct_squared_norms
            squared += norms(self.layer, self.x, self.gradient)
        if self.per_sample_bias is not None:
            squared += torch.linalg.vector_norm(self.per_sample_bias, dim=1).square()
        if self.keeps or not _trainable(self.layer.weight):
            self.x = self.gradient = None  # the sums need neither: let them go
        return squared

    def clipped_sums(
        self, factors: torch.Tensor, dropped: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        """(weight, bias) gradients summed over rows, each row's scaled by its clip factor;
        the rows in `dropped` (a mask, or None for none) count as zero, whatever they hold."""
        kept, per_sample_bias, x, gradient = self.kept, self.per_sample_bias, self.x, self.gradient
        if dropped is not None:
            kept, per_sample_bias, x, gradient = (
                None if rows is None else _zero_rows(rows, dropped)
                for rows in (kept, per_sample_bias, x, gradient)
            )
        weight = None
        if kept is not None:
            weight = (factors @ kept).view_as(self.layer.weight)
        elif _trainable(self.layer.weight):
            scaled = gradient * factors.view(-1, *[1] * (gradient.dim() - 1))
            weight = _weight_gradient(self.layer, x, scaled)
        bias = None if per_sample_bias is None else factors @ per_sample_bias
        return weight, bias


def _zero_rows(rows: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
    mask = dropped.view(-1, *[1] * (rows.dim() - 1))
    return torch.where(mask, torch.zeros((), dtype=rows.dtype, device=rows.device), rows)


@dataclass
class _Capture:
    """A layer's input and output from the recorded forward pass."""

    input: torch.Tensor | None
    output: torch.Tensor | None
    output_version: int
    input_needs_grad: bool


class PerSampleClipping:
    """Clipped summed per-sample gradients of `module`'s parameters, exactly as DP-SGD defines
    them, without materialising per-sample gradients where that is dearer.

    Usage: run the forward pass inside `record()`, then `backward(loss)` with the loss a sum
    of per-row terms; it leaves sum_i c_i g_i in each parameter's .grad and the rows'
    unclipped gradient norms in `per_sample_norms`. Outside `record()` the module runs as it
    is, with no per-sample work.
    """

    def __init__(self, module: nn.Module, *, max_grad_norm: float) -> None:
        self.module = module
        self.layers = supported_layers(module)
        self.max_grad_norm = max_grad_norm
        self.per_sample_norms = torch.zeros(0)
        self._captures: dict[nn.Module, _Capture] = {}
        self._inputs_need_grad = False
        self._steps: list[_LayerStep] = []
        self._squared: torch.Tensor | None = None

    @contextmanager
    def record(self) -> Iterator[None]:
        """Keep the supported layers' inputs and outputs of the forward pass run inside."""
        self._captures, self._inputs_need_grad = {}, False
        handles = [layer.register_forward_hook(self._capture) for layer in self.layers]
        handles.append(self.module.register_forward_pre_hook(self._note_inputs, with_kwargs=True))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _note_inputs(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        tensors = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
        self._inputs_need_grad |= any(t.requires_grad for t in tensors)

    def _capture(self, layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if layer in self._captures:
            raise ValueError(
                f"{type(layer).__name__} ran twice in one forward pass: its weights are shared "
                "between the two calls, so its per-sample gradient norms are not per call"
            )
        x = inputs[0]
        capture = _Capture(x.detach(), output, output._version, x.requires_grad)
        self._captures[layer] = capture
        if output.requires_grad:
            # Measured as its gradient arrives, while that is still in cache.
            output.register_hook(partial(self._measure, layer, capture))

    def _measure(self, layer: nn.Module, capture: _Capture, gradient: torch.Tensor) -> None:
        if not len(gradient):  # an empty (Poisson-sampled) batch: no row, no gradient
            return
        step = _LayerStep(layer, capture.input, gradient)
        capture.input = None  # the step holds it if it needs it
        squared = step.squared_norms()
        self._squared = squared if self._squared is None else self._squared + squared
        self._steps.append(step)

    def backward(self, loss: torch.Tensor) -> None:
        """Set each parameter's .grad to the sum over rows of its clipped gradients."""
        if not self._captures:
            raise RuntimeError("backward() needs a forward pass run inside record()")
        captures, self._captures = list(self._captures.values()), {}
        self._steps, self._squared = [], None
        try:
            _run_backward(captures, loss, everywhere=self._inputs_need_grad)
        finally:
            for capture in captures:
                # Each output's hook holds its capture: a cycle that would keep the output,
                # and the graph behind it, alive until the garbage collector runs.
                capture.output = None
        steps, squared = self._steps, self._squared
        self._steps, self._squared = [], None
        norms = loss.new_zeros(0) if squared is None else squared.sqrt()
        # A row whose gradient is not finite (huge weights overflow, a NaN anywhere in it)
        # counts as zero: its clip factor would be NaN, and no noise hides a NaN. Each row's
        # contribution stays finite with norm <= C whatever the weights, and its own.
        finite = torch.isfinite(norms)
        dropped = None if bool(finite.all()) else ~finite
        factors = (self.max_grad_norm / (norms + NORM_EPSILON)).clamp(max=1.0)
        factors = torch.where(finite, factors, torch.zeros_like(factors))
        sums = {step.layer: step.clipped_sums(factors, dropped) for step in steps}
        for layer in self.layers:
            # Neither has a layer the forward pass skipped, nor any layer in an empty batch.
            weight, bias = sums.get(layer, (None, None))
            _set_grad(layer.weight, weight)
            _set_grad(layer.bias, bias)
        self.per_sample_norms = norms.detach()


def _run_backward(captures: list[_Capture], loss: torch.Tensor, *, everywhere: bool) -> None:
    """Backward from the loss to the captured outputs, whose hooks measure each layer.

    Unless the module's inputs need gradients (`everywhere`), it goes only as far as the
    outputs of the layers fed by tensors that need none: every other layer's input then
    descends from those outputs (the only other tensors that need gradients are parameters,
    all in these layers), so the pass still reaches it; autograd computes no weight gradient
    and keeps just those few output gradients.
    """
    for capture in captures:
        # autograd would give the gradient of the in-place result, not of the layer's output
        if capture.output._version != capture.output_version:
            raise ValueError("a layer's output was modified in place after the layer")
    ends = [
        capture.output
        for capture in captures
        if capture.output.requires_grad and (everywhere or not capture.input_needs_grad)
    ]
    if ends:
        torch.autograd.grad(loss, ends, allow_unused=True)


def _set_grad(parameter: nn.Parameter | None, gradient: torch.Tensor | None) -> None:
    if not _trainable(parameter):
        return
    parameter.grad = torch.zeros_like(parameter) if gradient is None else gradient.detach()
