"""FusedAdam: the same updates as torch.optim.Adam(fused=True), and the same state_dict format."""

import sys
import subprocess

import torch

from autoenc_cli.training.optim import FusedAdam


def make_params(seed=0):
    g = torch.Generator().manual_seed(seed)
    conv = torch.randn(8, 4, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
    return [torch.nn.Parameter(conv), torch.nn.Parameter(torch.randn(8, generator=g))]


def train_steps(params, opt, steps, start=0):
    for k in range(start, start + steps):
        g = torch.Generator().manual_seed(100 + k)
        opt.zero_grad(set_to_none=True)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g).to(memory_format=torch.preserve_format)
        for group in opt.param_groups:
            group["lr"] = 1e-2 / (1 + k)
        opt.step()


def test_same_updates_as_torch_fused_adam():
    ours, theirs = make_params(), make_params()
    train_steps(ours, FusedAdam(ours, lr=1e-2, betas=(0.9, 0.99)), 6)
    train_steps(theirs, torch.optim.Adam(theirs, lr=1e-2, betas=(0.9, 0.99), fused=True), 6)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


def test_state_dicts_load_both_ways():
    reference = make_params()
    train_steps(reference, torch.optim.Adam(reference, lr=1e-2, betas=(0.9, 0.99), fused=True), 6)
    for first, second in ((FusedAdam, "torch"), ("torch", FusedAdam)):
        params = make_params()
        new = (lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.9, 0.99), fused=True))
        opt1 = first(params, lr=1e-2, betas=(0.9, 0.99)) if first is FusedAdam else new(params)
        train_steps(params, opt1, 3)
        saved = opt1.state_dict()
        assert set(saved["state"][0]) == {"step", "exp_avg", "exp_avg_sq"} and saved["param_groups"][0]["params"] == [0, 1]
        opt2 = second(params, lr=1.0, betas=(0.9, 0.99)) if second is FusedAdam else new(params)
        opt2.load_state_dict(saved)
        train_steps(params, opt2, 3, start=3)
        for a, b in zip(params, reference):
            assert torch.equal(a, b)


def test_training_never_imports_the_compiler():
    code = ("import sys, torch; from autoenc_cli.training.optim import FusedAdam\n"
            "p = [torch.nn.Parameter(torch.ones(3))]; o = FusedAdam(p, lr=0.1); p[0].grad = torch.ones(3); o.step()\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
