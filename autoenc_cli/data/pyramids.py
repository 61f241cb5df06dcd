"""Photographs of any size decoded once into a *pyramid cache*: every picture at its own size (capped at
MAX_STORED_SIDE) and halved again and again (Pillow's LANCZOS) until its short side would drop under 64, all levels of
all pictures in one flat uint8 `.npy` read through a memory map, so memory never grows with the number of windows
drawn from it (windows.py).
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from autoenc_cli.data.cache import decode_all, open_cache, save_cache
from autoenc_cli.data.reading import open_image
from autoenc_cli.model.autoencoder import IMAGE_SIZE

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
    """Pyramids of N pictures in one flat uint8 array: index[i] lists picture i's levels as (offset, height, width).

    For cutting windows the same facts are kept as tensors: `pixels` (the flat array seen as P x 3 pixels, on the
    host or moved to the GPU by to()), `table` (N x L x 3: each level's first pixel, height, width; a picture with
    fewer levels repeats its last) and `depth` (each picture's level count)."""
    flat: np.ndarray
    index: list[list[tuple[int, int, int]]]
    skipped: int

    def __post_init__(self):
        self.pixels = self.flat.reshape(-1, 3)
        deepest = max((len(levels) for levels in self.index), default=1)
        rows = [[(o // 3, h, w) for o, h, w in levels] + [(levels[-1][0] // 3, *levels[-1][1:])] * (deepest - len(levels))
                for levels in self.index]
        self.table = torch.tensor(rows, dtype=torch.long).reshape(len(rows), deepest, 3)
        self.depth = torch.tensor([len(levels) for levels in self.index], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.index)

    def to(self, device: torch.device) -> None:
        """Keep the pixels on `device` (a GPU), so that windows are cut there."""
        self.pixels = torch.from_numpy(np.array(self.flat)).to(device).reshape(-1, 3)
        self.table, self.depth = self.table.to(device), self.depth.to(device)

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
