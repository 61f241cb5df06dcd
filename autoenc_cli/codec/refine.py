"""Refinement: a better latent for the same decoder, found by optimising it (`autoenc encode --refine STEPS`).

The encoder computes a picture's latent in one pass. That pass is an approximation: for the same decoder there
are latents that reconstruct the picture better (the amortization gap of Yang, Bamler and Mandt, "Improving
Inference for Neural Image Compression", NeurIPS 2020). Refinement starts from the encoder's latent and takes
STEPS steps of Adam on the latent alone, the decoder fixed, against the squared error of the decoded picture
(in the network's units, as training measures it; only the picture's own pixels count, not its padding). The
result is an ordinary latent: `autoenc decode` with the same weights turns it into the better picture.

Exact in tiles, so any size fits --max-memory with no seams. A decoded pixel depends on the latents within
m = margin(decoder) cells of it (2 for the seed's network), so the gradient of one latent cell depends on the
pixels within m cells of it, and those on the latents within 2m cells. Each step computes the gradient window by
window: a core of cells plus 2m cells of context, its loss over the pixels within m cells of the core, and only
the core's gradient kept. Summed over the windows that is the whole picture's gradient (up to the order of float
additions), and Adam works element by element: a tiled refinement is the one-pass refinement
(tests/test_refine.py). Windows of several pictures of one size go through the decoder together.
"""

import logging
import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from autoenc_cli.codec.tiles import Plan, activation_bytes, budget_mb, fit_windows, margin, network_input, one_window_mb, spans
from autoenc_cli.codec.budget import check_steps
from autoenc_cli.model.autoencoder import DOWNSCALE
from autoenc_cli.model.hardware import autocast, keep_freed_memory

# Adam on the latent's own scale, at a constant rate: on 128 held-out crops (bf16, 10 / 50 steps) 2.5 with a first
# moment of 0.7 gave +1.13 / +1.64 dB, Adam's defaults at 2.0 +0.96 / +1.60; cosine or linear decay, lower or
# higher rates, and a step per channel scaled by its spread all did worse (docs/refine.md)
LEARNING_RATE = 2.5
BETAS = (0.7, 0.999)
CELL_VALUES = DOWNSCALE * DOWNSCALE * 3  # the loss is a sum per cell of pixels: the same for a crop and a photo
# Of --max-memory, the share for the windows' passes and their backward: larger windows, less context computed
# twice. Twice encode's share: `encode --refine` of a 2 MP photo peaked at 640 MB of RSS with 0.25 of 1,024 MB,
# at 866 MB with 0.5 (torch itself, the picture and the latent's optimiser state take the rest).
WINDOW_SHARE = 0.5
# From this much work over one window's (the windows' context computed again and again), a budget is said to slow a
# refinement down: the default budget cuts big photos at most about 2.2x, --max-memory 80 a 512x384 picture 81x.
SLOW_WINDOWS = 3.0
log = logging.getLogger("autoenc")


@dataclass(frozen=True)
class Refinement:
    """How a latent was refined; the latent file's sidecar records it (`autoenc info` shows it)."""
    steps: int
    lr: float = LEARNING_RATE
    betas: tuple[float, float] = BETAS
    optimizer: str = "adam"
    precision: str = "fp32"  # the arithmetic of the decoder's passes; the latent itself is always float32

    def to_json(self) -> dict:
        return asdict(self)


def backward_bytes(decoder, channels: int, precision: str) -> float:
    """Bytes per latent cell that a pass with its backward holds: the tensors autograd saves (measured on two
    sizes, so the weights' copies cancel out) plus one inference pass's peak for the gradients in flight."""
    key = ("backward", tuple(map(repr, decoder)), channels, precision)
    if key not in PROBED:
        device = next(decoder.parameters()).device
        saved = []
        for side in (4, 8):
            total = 0

            def pack(t):
                nonlocal total
                total += t.numel() * t.element_size()
                return t

            x = torch.zeros(1, channels, side, side, device=device, requires_grad=True)
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast(device, precision):
                decoder(x)
            saved.append(total)
        PROBED[key] = (saved[1] - saved[0]) / (8 * 8 - 4 * 4) + activation_bytes(decoder, channels, False)
    return PROBED[key]


PROBED: dict[tuple, float] = {}


def refine_plan(model, cells: tuple[int, int], max_memory_mb: float | None, precision: str) -> Plan:
    """The windows of a refinement: as tiles.plan, with twice the decoder's margin and room for the backward."""
    per_cell = backward_bytes(model.decoder, model.latent_channels, precision)
    return fit_windows(cells, 2 * margin(model.decoder, False), per_cell, max_memory_mb,
                       next(model.parameters()).device, "one refinement window", WINDOW_SHARE)


def loss_mask(span: tuple[int, int, int], window: int, context: int, valid: int) -> torch.Tensor:
    """Along one axis of a window, which of its pixels count: those within `context` cells of the core, and
    inside the picture's own pixels (`valid`, before its padding to a multiple of 16)."""
    start, core_start, core_end = span
    first = max(core_start - context, start) * DOWNSCALE
    last = min(core_end + context, start + window) * DOWNSCALE
    pixel = torch.arange(start * DOWNSCALE, (start + window) * DOWNSCALE)
    return ((pixel >= first) & (pixel < min(last, valid))).float()


def refine(model, pixels: torch.Tensor, latent: torch.Tensor, steps: int, size: tuple[int, int] | None = None,
           max_memory_mb: float | None = None, precision: str = "fp32",
           progress: Callable[[int, int], None] | None = None,
           observe: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """N pictures of one size, N x 3 x H x W (H, W multiples of 16: uint8 bytes, or already in the network's units)
    and their N x C x H/16 x W/16 latents ->
    the latents after `steps` steps of Adam against the decoder. size = (width, height): the pixels that count
    (the picture before its padding; default all). progress(0, total) once the windows are planned, then
    progress(done, total) after each step; observe(step, latents)
    too (benchmarks/refine_curve.py reads a whole curve from one run: the rate is constant, so the latents after
    k of n steps are those of a k-step refinement)."""
    steps = check_steps(steps)
    if steps == 0:
        return latent
    device = next(model.parameters()).device
    count, _, rows, cols = latent.shape
    valid_w, valid_h = size or (cols * DOWNSCALE, rows * DOWNSCALE)
    tile = refine_plan(model, (rows, cols), max_memory_mb, precision)
    context = tile.margin // 2  # the decoder's margin: the loss counts the pixels this far around a core
    jobs = [(n, r, c) for n in range(count) for r in spans(rows, tile.window[0], tile.margin)
            for c in spans(cols, tile.window[1], tile.margin)]
    say_if_slow(model, (rows, cols), (valid_w, valid_h), len(jobs) // count, tile, max_memory_mb, precision)
    masks = {}  # per window: which pixels count, as a 1 x 1 x h x w weight (the same every step)
    for r, c in {(r, c) for _, r, c in jobs}:  # the same windows for every picture of the batch
        masks[r, c] = (loss_mask(r, tile.window[0], context, valid_h)[:, None]
                       * loss_mask(c, tile.window[1], context, valid_w)[None, :])[None, None].to(device)
    keep_freed_memory()  # each step allocates and frees the same activations: keep them (hardware.py says why)
    z = latent.detach().to(device, torch.float32).clone()
    optimizer = torch.optim.Adam([z], lr=LEARNING_RATE, betas=BETAS)  # what Refinement records
    frozen = [p for p in model.decoder.parameters() if p.requires_grad]
    for p in frozen:  # no gradients for the weights: only the latent moves (and the backward is half the work)
        p.requires_grad_(False)
    if progress is not None:  # the bar is shown at once, its clock running: a step may take minutes
        progress(0, steps)
    try:
        for step in range(steps):
            z.grad = gradient(model, pixels, z, jobs, masks, tile, precision)
            optimizer.step()
            if progress is not None:
                progress(step + 1, steps)
            if observe is not None:
                observe(step + 1, z.detach())
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return z.detach().to(latent.device)


def say_if_slow(model, cells: tuple[int, int], size: tuple[int, int], windows: int, tile: Plan,
                max_memory_mb: float | None, precision: str) -> None:
    """A warning (logger "autoenc") when the budget cuts each step into windows that compute SLOW_WINDOWS times the
    work of one window or more: how many, about how much slower, and the budget that holds the picture in one."""
    slower = windows * tile.window[0] * tile.window[1] / (cells[0] * cells[1])
    if slower < SLOW_WINDOWS:
        return
    budget = budget_mb(max_memory_mb, next(model.parameters()).device)
    needed = math.ceil(one_window_mb(cells, backward_bytes(model.decoder, model.latent_channels, precision), WINDOW_SHARE))
    log.warning("--max-memory %s MB cuts each refinement step of a %dx%d picture into %d windows, about %sx slower "
                "than one window; --max-memory %d holds it in one", f"{budget:g}", *size, windows,
                f"{slower:.1f}" if slower < 10 else f"{slower:.0f}", needed)


def gradient(model, pixels: torch.Tensor, z: torch.Tensor, jobs: list, masks: dict, tile: Plan,
             precision: str) -> torch.Tensor:
    """The gradient of the pictures' loss with respect to their latents, computed window by window."""
    device = z.device
    grad = torch.zeros_like(z)
    h, w = tile.window
    for i in range(0, len(jobs), tile.per_pass):
        batch = jobs[i:i + tile.per_pass]
        window = torch.cat([z[n:n + 1, :, r[0]:r[0] + h, c[0]:c[0] + w] for n, r, c in batch]).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        target = torch.cat([pixels[n:n + 1, :, r[0] * DOWNSCALE:(r[0] + h) * DOWNSCALE,
                                   c[0] * DOWNSCALE:(c[0] + w) * DOWNSCALE] for n, r, c in batch]).to(device)
        weight = torch.cat([masks[r, c] for _, r, c in batch])
        with torch.enable_grad():
            with autocast(device, precision):
                decoded = model.decoder(window)
            if target.dtype == torch.uint8:
                target = network_input(target, model.color)
            loss = ((decoded.float() - target) ** 2 * weight).sum() / CELL_VALUES
            loss.backward()
        for k, (n, r, c) in enumerate(batch):  # keep each core's gradient
            grad[n, :, r[1]:r[2], c[1]:c[2]] = window.grad[k, :, r[1] - r[0]:r[2] - r[0], c[1] - c[0]:c[2] - c[0]]
    return grad

