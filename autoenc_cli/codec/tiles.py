"""Pictures of any size in bounded memory: the network run over overlapped tiles, with the one-pass result.

The network is fully convolutional with a bounded receptive field, so a latent cell (16 x 16 pixels)
depends only on the pixels within `margin(model.encoder)` cells around it, and a decoded cell's pixels
only on the latents within `margin(model.decoder)` cells around it. Both are computed from the layer
table (receptive_interval walks it backwards), not guessed: 3 cells for the encoder, 2 for the decoder.

A picture is cut into windows of one size (so that several go through the network in one pass), each
a core of cells plus at least a margin of context on every side that has a neighbour; a window that
reaches the picture's edge ends there, so the convolutions pad it with zeros exactly as one pass over
the whole picture does. Only each window's core is kept. Offsets are whole cells, so every stride lines
up with the one-pass grid: the result is the one-pass result up to the order of float additions
(latents within float rounding; pixels identical, or one level apart on under 0.1% of values, as tests/test_tiles.py
asserts).

Memory: one pass holds each layer's input and output at once; `activation_bytes` computes that peak per
pixel from the layer table, and `plan` picks the window and the windows per pass that fit a budget.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from autoenc_cli.model.color import from_network, to_network
from autoenc_cli.errors import AutoencError
from autoenc_cli.codec.budget import DEFAULT_MAX_MEMORY_MB
from autoenc_cli.model.hardware import autocast
from autoenc_cli.model.kernels import DepthToSpace
from autoenc_cli.model.autoencoder import DOWNSCALE

ACTIVATION_SHARE = 0.25  # of the budget for the network's activations; the rest: torch (~300 MB), the picture, its latent
ALLOCATOR_OVERHEAD = 1.5  # measured peak RSS over the layer table's peak (oneDNN scratch, allocator slack)
MIN_CORE_CELLS = 1



def receptive_interval(layers: nn.Sequential, first: int, last: int) -> tuple[int, int]:
    """The positions of the input that positions first..last of the output of `layers` depend on (one axis)."""
    for layer in reversed(list(layers)):
        if isinstance(layer, nn.Conv2d):
            k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
            first, last = s * first - p, s * last - p + k - 1
        elif isinstance(layer, DepthToSpace):
            first, last = first // 2, last // 2
    return first, last


def margin(layers: nn.Sequential, encoder: bool) -> int:
    """Cells of context a window needs around its core so that the core's cells equal the one-pass ones."""
    cell = 10  # any cell away from the edges
    if encoder:  # latent cell -> input pixels
        first, last = receptive_interval(layers, cell, cell)
        return math.ceil(max(cell * DOWNSCALE - first, last - (cell * DOWNSCALE + DOWNSCALE - 1)) / DOWNSCALE)
    first, last = receptive_interval(layers, cell * DOWNSCALE, cell * DOWNSCALE + DOWNSCALE - 1)  # pixels -> latents
    return max(cell - first, last - cell)


def activation_bytes(layers: nn.Sequential, channels_in: int, encoder: bool) -> float:
    """Peak bytes per input cell (16 x 16 pixels, or one latent cell) of one pass: the largest layer
    input + output, float32, from the layer table's shapes. Probed once per layer table and process: the probe
    (about 5 ms) would otherwise run for every picture that encode or decode is given."""
    key = (tuple(map(repr, layers)), channels_in, encoder)
    if key not in PEAK_BYTES:
        PEAK_BYTES[key] = probe_activation_bytes(layers, channels_in, encoder)
    return PEAK_BYTES[key]


PEAK_BYTES: dict[tuple, float] = {}


def probe_activation_bytes(layers: nn.Sequential, channels_in: int, encoder: bool) -> float:
    side = 4  # cells of a small probe
    x = torch.zeros(1, channels_in, side * (DOWNSCALE if encoder else 1), side * (DOWNSCALE if encoder else 1),
                    device=next(layers.parameters()).device)
    peak = 0
    with torch.inference_mode():
        for layer in layers:
            y = layer(x)
            peak = max(peak, x.numel() + y.numel())
            x = y
    return 4.0 * peak / side**2


@dataclass(frozen=True)
class Plan:
    window: tuple[int, int]  # cells of every window: rows, columns (the whole axis where it fits)
    margin: int  # cells of context kept around each core
    per_pass: int  # windows through the network at once


def budget_mb(max_memory_mb: float | None, device: torch.device) -> float:
    """The budget asked for, or by default DEFAULT_MAX_MEMORY_MB on a CPU and half the free memory on a GPU."""
    if max_memory_mb is not None:
        return max_memory_mb
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 2 / 2**20
    return DEFAULT_MAX_MEMORY_MB


def plan(layers: nn.Sequential, channels_in: int, encoder: bool, cells: tuple[int, int], max_memory_mb: float | None) -> Plan:
    """The largest square window (up to the picture) whose pass fits in ACTIVATION_SHARE of the budget, and how
    many such windows fit in one pass; a one-line error when not even a window of one core cell fits."""
    per_cell = activation_bytes(layers, channels_in, encoder)
    return fit_windows(cells, margin(layers, encoder), per_cell, max_memory_mb, next(layers.parameters()).device)


def fit_windows(cells: tuple[int, int], m: int, per_cell: float, max_memory_mb: float | None, device: torch.device,
                work: str = "one tile", share: float = ACTIVATION_SHARE) -> Plan:
    """The plan for windows of `m` cells of context around their cores, each cell costing `per_cell` bytes, within
    `share` of the budget."""
    per_cell *= ALLOCATOR_OVERHEAD
    max_memory_mb = budget_mb(max_memory_mb, device)
    budget = max_memory_mb * 2**20 * share
    smallest = min(cells[0], MIN_CORE_CELLS + 2 * m) * min(cells[1], MIN_CORE_CELLS + 2 * m)
    if smallest * per_cell > budget:
        raise AutoencError(f"--max-memory {max_memory_mb:g} MB is too small for {work} of this network "
                           f"(needs {smallest * per_cell / share / 2**20:.0f} MB)")
    side = max(MIN_CORE_CELLS + 2 * m, math.isqrt(int(budget / per_cell)))
    window = tuple(axis_window(n, side, m) for n in cells)
    return Plan(window, m, max(1, int(budget // (window[0] * window[1] * per_cell))))


def one_window_mb(cells: tuple[int, int], per_cell: float, share: float = ACTIVATION_SHARE) -> float:
    """The smallest budget (MB) whose plan by fit_windows holds `cells` in one window: its square side reaches the
    longer axis."""
    return max(cells) ** 2 * per_cell * ALLOCATOR_OVERHEAD / share / 2**20


def axis_window(cells: int, side: int, margin: int) -> int:
    """Along one axis: the whole axis if it fits in `side`, else the window that cuts it into equal cores with
    as few windows of at most `side` cells as possible (equal cores: the last window is not mostly overlap)."""
    if cells <= side:
        return cells
    count = math.ceil(cells / (side - 2 * margin))
    return math.ceil(cells / count) + 2 * margin


def spans(cells: int, window: int, margin: int) -> list[tuple[int, int, int]]:
    """Along one axis: (window start, core start, core end) for cores that cover 0..cells once, each window
    `window` cells long (or the whole axis) and reaching `margin` cells past its core where it has a neighbour."""
    if cells <= window:
        return [(0, 0, cells)]
    core, out = window - 2 * margin, []
    for start in range(0, cells, core):
        end = min(start + core, cells)
        out.append((min(max(start - margin, 0), cells - window), start, end))
    return out


def run_tiled(net, source: torch.Tensor, out: torch.Tensor, scale_in: int, scale_out: int, tile: Plan,
              prepare=lambda t: t, finish=lambda t: t, precision: str = "fp32") -> torch.Tensor:
    """finish(net(prepare(window))) for the windows of the 1 x C x H x W `source` (H, W: cells x scale_in), their cores
    written into `out` (cells x scale_out); prepare and finish run per pass, so neither the whole network input
    nor its whole float output is ever held. precision: fp32, or bf16 (autocast) where the hardware has it."""
    device = next(net.parameters()).device
    rows, cols = source.shape[2] // scale_in, source.shape[3] // scale_in
    h, w = tile.window[0] * scale_in, tile.window[1] * scale_in
    jobs = [(r, c) for r in spans(rows, tile.window[0], tile.margin) for c in spans(cols, tile.window[1], tile.margin)]
    for i in range(0, len(jobs), tile.per_pass):
        batch = jobs[i:i + tile.per_pass]
        windows = torch.cat([source[:, :, r[0] * scale_in:r[0] * scale_in + h, c[0] * scale_in:c[0] * scale_in + w]
                             for r, c in batch]).to(device)
        with torch.inference_mode(), autocast(device, precision):
            y = net(prepare(windows))
        with torch.inference_mode():
            y = finish(y.float()).cpu()
        for k, (r, c) in enumerate(batch):
            out[0, :, r[1] * scale_out:r[2] * scale_out, c[1] * scale_out:c[2] * scale_out] = \
                y[k, :, (r[1] - r[0]) * scale_out:(r[2] - r[0]) * scale_out, (c[1] - c[0]) * scale_out:(c[2] - c[0]) * scale_out]
    return out


def encode_tiled(model, pixels: torch.Tensor, max_memory_mb: float | None, precision: str = "fp32") -> np.ndarray:
    """1 x 3 x H x W uint8 pixels (H, W multiples of 16) -> C x H/16 x W/16 float32 latent."""
    cells = (pixels.shape[2] // DOWNSCALE, pixels.shape[3] // DOWNSCALE)
    tile = plan(model.encoder, 3, True, cells, max_memory_mb)
    out = torch.empty(1, model.latent_channels, *cells)
    return run_tiled(model.encoder, pixels, out, DOWNSCALE, 1, tile, prepare=lambda x: network_input(x, model.color),
                     precision=precision)[0].numpy()


def network_input(pixels: torch.Tensor, color: str) -> torch.Tensor:
    """uint8 windows -> the network's input, channels_last as in one pass (oneDNN's fast layout on a CPU)."""
    return to_network(pixels, color).contiguous(memory_format=torch.channels_last)


def decode_tiled(model, latent: torch.Tensor, max_memory_mb: float | None, precision: str = "fp32") -> np.ndarray:
    """1 x C x h x w float32 latent -> 16h x 16w x 3 uint8 pixels."""
    cells = tuple(latent.shape[2:])
    tile = plan(model.decoder, model.latent_channels, False, cells, max_memory_mb)
    out = torch.empty(1, 3, cells[0] * DOWNSCALE, cells[1] * DOWNSCALE, dtype=torch.uint8)
    return run_tiled(model.decoder, latent, out, 1, DOWNSCALE, tile,
                     finish=lambda y: from_network(y, model.color), precision=precision)[0].permute(1, 2, 0).numpy()
