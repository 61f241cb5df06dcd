"""Faster kernels for two spots of the network, same results as the plain PyTorch modules.

On a 2-core CPU half of a training step is memory-bound work around the convolutions
(docs/benchmarks.md). Two pieces of it have a cheaper form:

- A convolution and the ReLU after it run as one oneDNN kernel (a fused post-op), so the
  activation is written once instead of written, read and written again. The backward pass
  is PyTorch's own: the ReLU's mask, then the convolution's backward.
- Depth-to-space is PyTorch's pixel shuffle; its backward (a pixel unshuffle) is slow on
  channels_last tensors, so it is done as two simple copies instead.

`Layers` is an nn.Sequential that uses the fused kernel for each (Conv2d, ReLU) pair when it
can (a CPU tensor with oneDNN), and the modules one by one otherwise; it keeps the modules,
so weight names and the layer table stay the seed's. LeakyReLU (training's first half) is not
fused: its slope changes every step, and oneDNN would build a new kernel for every value.
"""

import functools
import platform

import torch
import torch.nn.functional as F
from torch import nn

aten = torch.ops.aten


@functools.cache
def _fused_dtypes() -> tuple[torch.dtype, ...]:
    """What oneDNN's fused kernel runs here: fp32 on x86 CPUs, bf16 only where the CPU has it natively
    (elsewhere the fused kernel refuses bf16, while the plain modules fall back to a slow path)."""
    if not (torch.backends.mkldnn.is_available() and platform.machine().lower() in ("x86_64", "amd64")):
        return ()
    return (torch.float32, torch.bfloat16) if torch.ops.mkldnn._is_mkldnn_bf16_supported() else (torch.float32,)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a CPU convolution of x runs in: autocast's when it is on, x's own otherwise."""
    return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype


def _fusable(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dim() == 4 and _compute_dtype(x) in _fused_dtypes()


class _ConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        y = torch.ops.mkldnn._convolution_pointwise(x, weight, bias, padding, stride, [1, 1], 1, "relu", [], "")
        ctx.save_for_backward(x, weight, y)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, y = ctx.saved_tensors
        grad = aten.threshold_backward(grad, y, 0)
        gx, gw, gb = aten.convolution_backward(
            grad, x, weight, [weight.shape[0]] if ctx.has_bias else None, ctx.stride, ctx.padding, [1, 1],
            False, [0, 0], 1, [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]])
        return gx, gw, gb, None, None


def conv_relu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """relu(conv(x)) as one oneDNN kernel; autocast is honoured."""
    dtype = _compute_dtype(x)
    weight = conv.weight.to(dtype)
    bias = conv.bias.to(dtype) if conv.bias is not None else None
    with torch.autocast("cpu", enabled=False):
        return _ConvReLU.apply(x.to(dtype), weight, bias, list(conv.stride), list(conv.padding))


def _fits_fused(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.groups == 1 and conv.dilation == (1, 1)
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str))


def _hooked(module: nn.Module) -> bool:  # hooks see each module's own call: run those one by one
    return bool(module._forward_hooks or module._forward_pre_hooks)


class Layers(nn.Sequential):
    """nn.Sequential running each convolution + ReLU pair as one fused kernel where it can."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self)
        i = 0
        while i < len(layers):
            layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(after, nn.ReLU) and _fits_fused(layer) and _fusable(x) \
                    and not (_hooked(layer) or _hooked(after)):
                x = conv_relu(layer, x)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x


class _DepthToSpace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return F.pixel_shuffle(x, 2)

    @staticmethod
    def backward(ctx, grad):
        if not grad.is_contiguous(memory_format=torch.channels_last):
            return F.pixel_unshuffle(grad, 2)
        n, c, h2, w2 = grad.shape
        h, w = h2 // 2, w2 // 2
        # NHWC grad[n, 2h+i, 2w+j, c] -> blocks [n, h, w, (i, j), c] (whole channel vectors move) ->
        # [n, h, w, c, (i, j)], the channel order of pixel_unshuffle
        blocks = grad.permute(0, 2, 3, 1).view(n, h, 2, w, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(n * h * w, 4, c)
        return blocks.transpose(1, 2).reshape(n, h, w, 4 * c).permute(0, 3, 1, 2)


class DepthToSpace(nn.PixelShuffle):
    """nn.PixelShuffle(2) (channels / 4, height and width x 2) with a faster backward on channels_last."""

    def __init__(self):
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _DepthToSpace.apply(x) if x.dim() == 4 else F.pixel_shuffle(x, 2)
