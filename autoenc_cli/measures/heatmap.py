"""Where a picture is badly reconstructed, drawn over it: `autoenc score --heatmaps DIR`.

One PNG per picture: the original, the reconstruction, and the per-pixel error (RMS over the channels, in
8-bit levels) in the inferno colour map laid over a grey copy of the original, on one fixed scale so that
panels compare across pictures. Large pictures are shown at most PANEL pixels on a side.

The colour map is matplotlib's inferno at 8 anchors, interpolated: matplotlib itself is not a dependency (see
plot.py: about 20 MB of wheels and 0.64 s to import, for one colour map here).
"""

import os

import numpy as np
import torch.nn.functional as F
from PIL import Image, ImageDraw

from autoenc_cli.model.architecture import font
from autoenc_cli.codec.encoding import save_png
from autoenc_cli.codec.metrics import squared_error

PANEL = 384
FULL_SCALE = 48.0  # RMS error in 8-bit levels drawn at the top of the colour map: the bundled model's bad regions are 20-60
INFERNO = [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 255, 164)]
HEADER, FOOTER, GAP = 24, 34, 8


def colour_map(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 along INFERNO (linear between its anchors)."""
    anchors = np.asarray(INFERNO, dtype=np.float32)
    positions = np.linspace(0, 1, len(anchors))
    return np.stack([np.interp(values, positions, anchors[:, c]) for c in range(3)], -1).round().astype(np.uint8)


def error_overlay(original: np.ndarray, reconstruction: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The RMS error map at `size` (w, h), coloured and blended over the grey original: the more error, the
    more colour, so that clean places show the picture and bad ones glow."""
    mean_square = F.adaptive_avg_pool2d(squared_error(original, reconstruction)[None, None], (size[1], size[0]))[0, 0]
    level = np.clip(mean_square.sqrt().numpy() / FULL_SCALE, 0, 1)  # the RMS error of the pixels each one shows
    grey = np.asarray(Image.fromarray(original).convert("L").resize(size, Image.BILINEAR), dtype=np.float32)[..., None]
    alpha = (0.25 + 0.75 * level)[..., None]
    return (grey * (1 - alpha) + colour_map(level).astype(np.float32) * alpha).round().astype(np.uint8)


def panel_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, PANEL / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def heatmap_image(original: np.ndarray, reconstruction: np.ndarray, title: str) -> Image.Image:
    """Original | reconstruction | error overlay, with a title above and labels and a colour bar below."""
    h, w = original.shape[:2]
    size = panel_size(w, h)
    canvas = Image.new("RGB", (3 * size[0] + 4 * GAP, HEADER + size[1] + FOOTER), "white")
    draw, small = ImageDraw.Draw(canvas), font(12)
    draw.text((GAP, 5), title, fill="black", font=small)
    panels = (Image.fromarray(original).resize(size, Image.BICUBIC), Image.fromarray(reconstruction).resize(size, Image.BICUBIC),
              Image.fromarray(error_overlay(original, reconstruction, size)))
    labels = ("original", "reconstruction", f"error, RMS levels (0 to {FULL_SCALE:.0f}+)")
    for i, (picture, label) in enumerate(zip(panels, labels)):
        x = GAP + i * (size[0] + GAP)
        canvas.paste(picture, (x, HEADER))
        draw.text((x, HEADER + size[1] + 3), label, fill="black", font=small)
    bar_x, bar_w = GAP + 2 * (size[0] + GAP), min(size[0], 200)
    bar = colour_map(np.linspace(0, 1, bar_w))[None].repeat(8, 0)
    canvas.paste(Image.fromarray(bar), (bar_x, HEADER + size[1] + 20))
    return canvas


def write_heatmap(path: str | os.PathLike, original: np.ndarray, reconstruction: np.ndarray, title: str) -> None:
    save_png(np.asarray(heatmap_image(original, reconstruction, title)), path)
