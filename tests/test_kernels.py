"""The fused conv + ReLU kernel and the depth-to-space backward give the plain modules' results."""

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autoenc_cli.model.kernels import DepthToSpace, Layers, _fusable
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.model.autoencoder import swap_relus


def plain_copy(model: Autoencoder) -> Autoencoder:
    """The same network with nn.Sequential and nn.PixelShuffle: PyTorch's modules one by one."""
    plain = copy.deepcopy(model)
    for name in ("encoder", "decoder"):
        layers = [nn.PixelShuffle(2) if isinstance(m, DepthToSpace) else m for m in getattr(plain, name)]
        setattr(plain, name, nn.Sequential(*layers))
    return plain


def loss_and_grads(model, x, bf16):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = model(x)
    loss = F.mse_loss(y.float(), x)
    loss.backward()
    return y.float(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("bf16,slope", [(False, 0.0), (False, 0.3), (True, 0.0), (True, 0.3)])
def test_fused_model_matches_plain_modules(bf16, slope):
    torch.manual_seed(0)
    model = Autoencoder(1)
    init_weights(model)
    model = model.to(memory_format=torch.channels_last)
    if slope:
        swap_relus(model, slope)
    plain = plain_copy(model)
    x = (torch.rand(3, 3, 32, 48) * 4 - 2).contiguous(memory_format=torch.channels_last)
    assert _fusable(x) or not torch.backends.mkldnn.is_available()
    y, grads = loss_and_grads(model, x, bf16)
    y_ref, grads_ref = loss_and_grads(plain, x, bf16)
    assert y.shape == y_ref.shape == x.shape
    if not bf16:
        assert torch.allclose(y, y_ref, atol=1e-4, rtol=1e-4)
        for g, g_ref in zip(grads, grads_ref):
            assert (g - g_ref).abs().max() <= 1e-4 * g_ref.abs().max()
        return
    # bf16: the fused kernel rounds at other points; it must be as close to fp32 as the plain modules are
    y32, grads32 = loss_and_grads(plain, x, False)
    assert (y - y32).abs().max() <= 1.5 * (y_ref - y32).abs().max() + 1e-3
    for g, g_ref, g32 in zip(grads, grads_ref, grads32):
        assert (g - g32).abs().max() <= 1.5 * (g_ref - g32).abs().max() + 1e-3 * g32.abs().max()


def test_depth_to_space_backward_is_pixel_unshuffle():
    for fmt in (torch.channels_last, torch.contiguous_format):
        x = torch.randn(2, 8, 3, 5).contiguous(memory_format=fmt).requires_grad_()
        y = DepthToSpace()(x)
        assert torch.equal(y, F.pixel_shuffle(x.detach(), 2))
        g = torch.randn_like(y)
        y.backward(g)
        assert torch.equal(x.grad, F.pixel_unshuffle(g, 2))


def test_hooks_on_a_layer_still_fire():
    seen = []
    layers = Layers(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU())
    layers[1].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    out = layers(torch.randn(1, 3, 8, 8))
    assert seen == [out.shape] and (out >= 0).all()


def test_bf16_on_a_cpu_without_native_bf16_falls_back_to_the_plain_modules():
    """oneDNN's fused kernel refuses bf16 on e.g. an AVX2-only CPU, where `--precision bf16` still runs
    (slowly, emulated); ONEDNN_MAX_CPU_ISA=AVX2 makes this CPU look like one."""
    code = ("import torch, torch.nn.functional as F\n"
            "from autoenc_cli.model.autoencoder import Autoencoder\n"
            "m = Autoencoder(1).to(memory_format=torch.channels_last)\n"
            "x = torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)\n"
            "with torch.autocast('cpu', dtype=torch.bfloat16):\n"
            "    y = m(x)\n"
            "F.mse_loss(y.float(), x).backward()\n"
            "print(tuple(y.shape), y.dtype)")
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(2, 3, 32, 32) torch.bfloat16"
