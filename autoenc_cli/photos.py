"""Training on photographs of any size: random 64x64 windows at random scales, as image-compression trainers do.

A folder whose pictures are not all 64x64 is decoded once into a *pyramid cache*: every picture at
its own size (capped at MAX_STORED_SIDE) and halved again and again (Pillow's LANCZOS) until its
short side would drop under 64, all levels of all pictures in one flat uint8 `.npy` read through a
memory map, so memory never grows with the number of windows drawn.

A window is drawn as (picture, zoom, position, flip): zoom z is log-uniform in [1, z_max], where
z = 1 is the photo's own resolution and z_max = short side / 64 is the whole picture's short side
(or `max_zoom`, if smaller). The window is z * 64 source pixels wide; it is cut from pyramid level
floor(log2 z), where it is 64..127 pixels wide, and resized to 64x64 there (bicubic, antialiased).
Every draw comes from a generator seeded by (seed, epoch), so a resumed run draws the same windows.
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data import decode_all, open_cache, open_image, save_cache
from .errors import AutoencError
from .model import IMAGE_SIZE

MAX_STORED_SIDE = 2048  # longer sides are scaled down once, when cached (a 12 MP photo: 12 MB -> 4 MB per level 0)
PYRAMID_VERSION = 1  # bump when decoding or the pyramid changes


def pyramid_levels(img: Image.Image) -> list[np.ndarray]:
    """The picture capped at MAX_STORED_SIDE, then halved until its short side would be under 64 pixels."""
    if max(img.size) > MAX_STORED_SIDE:
        scale = MAX_STORED_SIDE / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    levels = [np.asarray(img, dtype=np.uint8)]
    while min(img.size) // 2 >= IMAGE_SIZE:
        img = img.resize((img.width // 2, img.height // 2), Image.LANCZOS)
        levels.append(np.asarray(img, dtype=np.uint8))
    return levels


def _decode_levels(path: Path) -> list[np.ndarray] | None:
    try:
        img = open_image(path)
    except Exception:  # a broken file never stops a whole dataset  # noqa: BLE001
        return None
    if min(img.size) < IMAGE_SIZE:  # smaller than one window: upscale its short side to 64 once
        scale = IMAGE_SIZE / min(img.size)
        img = img.resize((max(IMAGE_SIZE, round(img.width * scale)), max(IMAGE_SIZE, round(img.height * scale))), Image.BICUBIC)
    return pyramid_levels(img)


@dataclass
class Photos:
    """Pyramids of N pictures in one flat uint8 array: index[i] lists picture i's levels as (offset, height, width)."""
    flat: np.ndarray
    index: list[list[tuple[int, int, int]]]
    skipped: int

    def __len__(self) -> int:
        return len(self.index)

    def level(self, picture: int, k: int) -> np.ndarray:
        offset, h, w = self.index[picture][k]
        return self.flat[offset:offset + h * w * 3].reshape(h, w, 3)

    def max_zoom(self, picture: int) -> float:
        _, h, w = self.index[picture][0]
        return min(h, w) / IMAGE_SIZE


def cached_photos(files: list[Path], cache_dir=None, progress=None, label: str = "decoding photos") -> Photos:
    """Decode `files` once into a pyramid cache (in parallel, with a progress callback) and map it."""
    npy, meta, entry = open_cache(files, cache_dir, f"pyramid v{PYRAMID_VERSION} {MAX_STORED_SIDE}",
                                  lambda npy, info: Photos(np.load(npy, mmap_mode="r"), info["index"], info["skipped"]))
    if entry is not None:
        return entry
    parts, index, offset = [], [], 0
    for levels in decode_all(_decode_levels, files, min(len(files) // 16 + 1, os.cpu_count() or 1), progress, label):
        if levels is not None:
            index.append([])
            for a in levels:
                index[-1].append((offset, a.shape[0], a.shape[1]))
                parts.append(a.reshape(-1))
                offset += a.size
    flat = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    if save_cache(npy, meta, flat, {"files": len(files), "skipped": len(files) - len(index), "index": index}):
        flat = np.load(npy, mmap_mode="r")
    return Photos(flat, index, len(files) - len(index))


PERMUTATIONS = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


@dataclass
class WindowDraws:
    """One epoch's draws, one row per window: picture, then uniform numbers for zoom, x, y, and a flip;
    for the optional augmentations a quarter-turn count and a channel order."""
    picture: torch.Tensor
    uniform: torch.Tensor  # len x 3, in [0, 1)
    flips: torch.Tensor
    turns: torch.Tensor  # 0..3 quarter turns
    channel_order: torch.Tensor  # index into PERMUTATIONS; 0 keeps RGB


def draw_windows(seed: int, epoch: int, pictures: int, count: int) -> WindowDraws:
    """`count` windows for this epoch: every picture equally often (a permutation repeated), from (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    picture = torch.cat([torch.randperm(pictures, generator=g) for _ in range(-(-count // pictures))])[:count]
    uniform, flips = torch.rand(count, 3, generator=g), torch.rand(count, generator=g) < 0.5
    return WindowDraws(picture, uniform, flips, torch.randint(4, (count,), generator=g),
                       torch.randint(len(PERMUTATIONS), (count,), generator=g))


def cut_window(photos: Photos, picture: int, u: tuple[float, float, float], max_zoom: float | None) -> torch.Tensor:
    """One 64x64x3 uint8 window: zoom from u[0] (log-uniform), position from u[1], u[2]."""
    z_max = photos.max_zoom(picture) if max_zoom is None else min(max_zoom, photos.max_zoom(picture))
    z = math.exp(u[0] * math.log(max(1.0, z_max)))
    k = min(int(math.log2(z)), len(photos.index[picture]) - 1)
    level = photos.level(picture, k)
    h, w = level.shape[:2]
    side = min(h, w, max(IMAGE_SIZE, round(IMAGE_SIZE * z / 2 ** k)))
    top, left = int(u[2] * (h - side + 1)), int(u[1] * (w - side + 1))
    window = torch.from_numpy(np.array(level[top:top + side, left:left + side]))
    if side == IMAGE_SIZE:
        return window
    x = window.permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)


def window_batch(photos: Photos, draws: WindowDraws, start: int, size: int, max_zoom: float | None = None,
                 turns: bool = False, channel_orders: bool = False) -> torch.Tensor:
    """Windows [start, start + size) of an epoch's draws as N x 64 x 64 x 3 uint8 (flipped where drawn; with
    `turns` also turned by quarter turns, with `channel_orders` with their RGB channels reordered)."""
    rows = []
    for i in range(start, start + size):
        w = cut_window(photos, int(draws.picture[i]), draws.uniform[i].tolist(), max_zoom)
        w = w.flip(1) if draws.flips[i] else w
        w = torch.rot90(w, int(draws.turns[i]), (0, 1)) if turns else w
        rows.append(w[:, :, PERMUTATIONS[draws.channel_order[i]]] if channel_orders else w)
    return torch.stack(rows)


def fixed_windows(photos: Photos, per_picture: int, max_zoom: float | None = None, seed: int = 12345) -> np.ndarray:
    """The same windows every time (a validation set): `per_picture` from each picture, N x 64 x 64 x 3 uint8."""
    if len(photos) == 0:
        raise AutoencError("no photos to cut validation windows from")
    draws = draw_windows(seed, 0, len(photos), len(photos) * per_picture)
    draws.flips[:] = False
    return window_batch(photos, draws, 0, len(draws.picture), max_zoom).numpy()
