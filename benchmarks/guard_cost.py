"""What the divergence guard costs per training step, measured against the step it guards, in one run.

    python benchmarks/guard_cost.py [--device cpu|cuda] [--batch-size N] [--steps 20]

The guard's work is one snapshot of the weights and Adam's moments per log step (guard.Guard.keep: every
TrainConfig.log_every steps, and at each epoch's end) plus a median of eight numbers. This times a training step of
the seed network (forward, backward, Adam) and a snapshot, and prints the snapshot's share of the steps between two.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from autoenc_cli.training.config import CUDA_BATCH, DEFAULT_BATCH, TrainConfig
from autoenc_cli.training.guard import Guard
from autoenc_cli.model.hardware import autocast, pick_device, pick_precision
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.training.optim import adam


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up: kernels chosen, the optimizer's slots made
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    device = pick_device(args.device)
    precision = pick_precision("auto", device)
    batch = args.batch_size or (CUDA_BATCH if device.type == "cuda" else DEFAULT_BATCH)
    model = Autoencoder().to(device, memory_format=torch.channels_last)
    init_weights(model)
    optimizer = adam(model.parameters(), device, lr=1e-3, betas=(0.9, 0.99))
    x = torch.rand(batch, 3, 64, 64, device=device).contiguous(memory_format=torch.channels_last) * 4 - 2

    def step():
        with autocast(device, precision):
            y = model(x)
        loss = F.mse_loss(y.float(), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    guard = Guard()
    step_s = timed(step, args.steps, device)
    keep_s = timed(lambda: guard.keep(0, model, optimizer), args.steps * 5, device)
    every = TrainConfig(data="").log_every
    print(f"{device.type} {precision}, batch {batch}: a step {step_s * 1e3:.2f} ms, a snapshot {keep_s * 1e3:.3f} ms; "
          f"one snapshot per {every} steps costs {100 * keep_s / (every * step_s):.3f}% of training time")


if __name__ == "__main__":
    main()
