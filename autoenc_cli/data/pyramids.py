"""Photographs of any size decoded once into a *pyramid cache*: every picture at its own size (capped at
MAX_STORED_SIDE) and halved again and again (Pillow's LANCZOS) until its short side would drop under 64, all levels of
all pictures in one flat uint8 `.npy` read through a memory map, so memory never grows with the number of windows
drawn from it (windows.py).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from autoenc_cli.data.cache import decode_all, open_cache, places_in_parts, save_cache
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


def stored_pixels(size: tuple[int, int] | None) -> int:
    """Pixels of a picture's level 0 once cached (capped at MAX_STORED_SIDE), from its header's (width, height):
    its pyramid takes about 4/3 of that times 3 bytes. 0 when the header could not be read."""
    if size is None:
        return 0
    scale = min(1.0, MAX_STORED_SIDE / max(1, *size))
    return round(size[0] * scale) * round(size[1] * scale)


@dataclass
class Photos:
    """Pyramids of N pictures in uint8 arrays: index[i] lists picture i's levels as (offset, height, width), the
    offset counted along `chunks` laid end to end (one array for a cache built by one process; one per part for a
    machine's cache built by its processes together, joined()). `missing`: which of the files were unreadable.

    For cutting windows the same facts are kept as tensors: `pixels` (the pixels seen as P x 3, on the host or
    moved to the GPU by to()), `table` (N x L x 3: each level's first pixel, height, width; a picture with
    fewer levels repeats its last) and `depth` (each picture's level count)."""
    chunks: list[np.ndarray]
    index: list[list[tuple[int, int, int]]]
    skipped: int
    missing: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.starts = np.cumsum([0] + [c.size for c in self.chunks])
        self.pixels = self.chunks[0].reshape(-1, 3) if len(self.chunks) == 1 else None  # host: cut_window reads levels
        deepest = max((len(levels) for levels in self.index), default=1)
        rows = [[(o // 3, h, w) for o, h, w in levels] + [(levels[-1][0] // 3, *levels[-1][1:])] * (deepest - len(levels))
                for levels in self.index]
        self.table = torch.tensor(rows, dtype=torch.long).reshape(len(rows), deepest, 3)
        self.depth = torch.tensor([len(levels) for levels in self.index], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def nbytes(self) -> int:
        return int(self.starts[-1])

    def to(self, device: torch.device) -> None:
        """Keep the pixels on `device` (a GPU), one array of all chunks, so that windows are cut there."""
        pixels = torch.empty(self.nbytes, dtype=torch.uint8, device=device)
        for start, chunk in zip(self.starts, self.chunks):
            pixels[start:start + chunk.size].copy_(torch.from_numpy(np.array(chunk)))
        self.pixels = pixels.reshape(-1, 3)
        self.table, self.depth = self.table.to(device), self.depth.to(device)

    def level(self, picture: int, k: int) -> np.ndarray:
        offset, h, w = self.index[picture][k]
        c = int(np.searchsorted(self.starts, offset, side="right")) - 1
        offset -= int(self.starts[c])
        return self.chunks[c][offset:offset + h * w * 3].reshape(h, w, 3)

    def max_zoom(self, picture: int) -> float:
        _, h, w = self.index[picture][0]
        return min(h, w) / IMAGE_SIZE

    @staticmethod
    def joined(parts: "list[Photos]", members: list[list[int]]) -> "Photos":
        """One Photos of files 0..n-1 from parts, part p holding the files members[p] (each in order): the pictures
        in the files' order, as one process decoding them all would have made them, the pixels left where they are."""
        where = places_in_parts([part.missing for part in parts], members)
        firsts = np.cumsum([0] + [part.nbytes for part in parts])
        index, missing = [], []
        for i in range(sum(len(files) for files in members)):
            if i not in where:
                missing.append(i)
                continue
            p, j = where[i]
            index.append([(o + int(firsts[p]), h, w) for o, h, w in parts[p].index[j]])
        return Photos([c for part in parts for c in part.chunks], index, len(missing), missing)


def cached_photos(files: list[Path], cache_dir=None, progress=None, label: str = "decoding photos",
                  workers: int | None = None) -> Photos:
    """Decode `files` once into a pyramid cache (in parallel, with a progress callback) and map it."""
    npy, meta, entry = open_cache(files, cache_dir, f"pyramid v{PYRAMID_VERSION} {MAX_STORED_SIDE}", opened_photos)
    if entry is not None:
        return entry
    parts, index, missing, offset = [], [], [], 0
    workers = workers or min(len(files) // 16 + 1, os.cpu_count() or 1)
    for i, levels in enumerate(decode_all(_decode_levels, files, workers, progress, label)):
        if levels is None:
            missing.append(i)
            continue
        index.append([])
        for a in levels:
            index[-1].append((offset, a.shape[0], a.shape[1]))
            parts.append(a.reshape(-1))
            offset += a.size
    flat = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    if save_cache(npy, meta, flat, {"files": len(files), "skipped": len(missing), "missing": missing, "index": index}):
        flat = np.load(npy, mmap_mode="r")
    return Photos([flat], index, len(missing), missing)


def opened_photos(npy: Path, info: dict) -> Photos:
    # an entry written before `missing` was recorded is whole when nothing was skipped (else it is rebuilt: KeyError)
    missing = info["missing"] if info["skipped"] else info.get("missing", [])
    return Photos([np.load(npy, mmap_mode="r")], info["index"], info["skipped"], missing)
