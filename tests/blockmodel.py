"""A hand-set seed network whose round trip is known exactly: every 16x16 block becomes its mean colour.

Each colour x is carried as the pair (relu(x), relu(-x)), so the ReLUs lose nothing. Stride-2
convolutions average 2x2 blocks (only the taps that see the block, so zero padding never
enters), stride-1 convolutions pass values through or copy them four times for the next
depth-to-space, and the last 1x1 convolution turns each pair back into x. Nothing depends on
where a block sits in the picture, so a picture gives the same pixels whole or cut in pieces.
"""

import numpy as np
import torch
from torch import nn

from autoenc_cli.model.autoencoder import Autoencoder

PAIRS = 6  # (pos, neg) for R, G, B


def _average(conv: nn.Conv2d) -> None:
    """Stride 2: the mean of the 2x2 block under each output, split into (pos, neg) again."""
    for k in range(0, PAIRS, 2):
        for out, sign in ((k, 1.0), (k + 1, -1.0)):
            conv.weight.data[out, k, 1:3, 1:3] = 0.25 * sign
            conv.weight.data[out, k + 1, 1:3, 1:3] = -0.25 * sign


def _copy(conv: nn.Conv2d, copies: int) -> None:
    """Stride 1, centre tap: output channel copies*k + r = input channel k."""
    for k in range(PAIRS):
        for r in range(copies):
            conv.weight.data[copies * k + r, k, 1, 1] = 1.0


def block_mean_model(channel_multiplier: int = 1) -> Autoencoder:
    model = Autoencoder(channel_multiplier)
    for p in model.parameters():
        p.data.zero_()
    first = model.encoder[0]
    for c in range(3):  # raw colours in: x -> (relu(mean x), relu(-mean x))
        first.weight.data[2 * c, c, 1:3, 1:3] = 0.25
        first.weight.data[2 * c + 1, c, 1:3, 1:3] = -0.25
    for conv in model.encoder[2:13:2]:
        _average(conv) if conv.stride[0] == 2 else _copy(conv, 1)
    _copy(model.encoder[14], 4)  # the latent holds each pair 4 times, for depth-to-space
    convs = [m for m in model.decoder if isinstance(m, nn.Conv2d)]
    for i, conv in enumerate(convs[:-1]):
        _copy(conv, 4 if i in (1, 3, 5) else 1)  # the conv before each depth-to-space copies
    last = convs[-1]
    for c in range(3):
        last.weight.data[c, 2 * c, 0, 0] = 1.0
        last.weight.data[c, 2 * c + 1, 0, 0] = -1.0
    return model.eval()


def block_means(pixels: np.ndarray, block: int = 16) -> np.ndarray:
    """H x W x 3 uint8 (sides multiples of block) -> each block filled with its rounded mean."""
    h, w, _ = pixels.shape
    means = pixels.reshape(h // block, block, w // block, block, 3).astype(np.float64).mean((1, 3))
    return np.rint(means).repeat(block, 0).repeat(block, 1).astype(np.uint8)


def perturbed(model: Autoencoder, scale: float = 0.02, seed: int = 0) -> Autoencoder:
    """Every weight nudged at random: all 3x3 taps live, so zero padding shapes the borders."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model
