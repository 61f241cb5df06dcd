"""Features for a whole dataset in one file: `autoenc encode DIR_OR_FILES --resize 64 --stack features.npy`.

FILE.npy holds one (N, C, H/16, W/16) array, row i the latent of paths[i]; FILE.npy.json (plain JSON) lists
the paths, the pictures skipped as unreadable, the dtype, --resize and the weights. Both load with numpy
and json alone:

    z = numpy.load("features.npy")                       # (N, 128, 4, 4) for --resize 64
    paths = json.load(open("features.npy.json"))["paths"]

Pictures are decoded in parallel a batch at a time and encoded a batch per forward pass; the array is written
through a memory map into a temporary file renamed into place at the end, so memory stays the size of a batch
and a killed run leaves no half-written FILE.npy.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autoenc_cli.codec.encoding import check_resize, encode_images, encode_picture, pad_to_multiple, read_picture
from autoenc_cli.codec.budget import check_steps
from autoenc_cli.data.reading import worker_pool
from autoenc_cli.codec.refine import Refinement, refine as refine_latents
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import atomic_path, read_regular_text, write_text_atomic
from autoenc_cli.model.autoencoder import DOWNSCALE
from autoenc_cli.codec.tiles import plan

FORMAT = "autoenc-stack"
BATCH_PIXELS = 2**22  # at most, pixels per forward pass (1,024 pictures of 64x64), within --max-memory
DTYPES = ("float32", "float16")


@dataclass
class Stacked:
    paths: list[Path]
    skipped: list[Path]
    shape: tuple[int, ...]


def read_or_none(job: tuple[Path, int | None]) -> np.ndarray | None:
    try:
        return read_picture(*job)
    except AutoencError:
        return None


def sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def read_stack_sidecar(target: Path) -> dict | None:
    """What the sidecar of the --stack output `target` says (paths, skipped, dtype, resize, weights), or None when
    there is no such sidecar beside it (none, or a single latent's)."""
    side = sidecar(target)
    if not side.is_file():
        return None
    try:
        meta = json.loads(read_regular_text(side, "stack sidecar"))
    except (ValueError, RecursionError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def encode_stack(model, files: list[Path], target: Path, resize: int | None, dtype: str = "float32",
                 weights: dict | None = None, progress=None, workers: int | None = None, max_memory_mb: float | None = None,
                 refine: int = 0) -> Stacked:
    """Encode `files` (pictures of one size, or any with resize) into one array at `target`, and its sidecar;
    refine: steps of refinement of each latent (refine.py), recorded in the sidecar."""
    if dtype not in DTYPES:
        raise AutoencError(f"--dtype {dtype}: --stack stores {' or '.join(DTYPES)} (int8 scales are per latent)")
    check_resize(resize)  # before read_or_none, which would take a bad --resize for unreadable files
    refine = check_steps(refine)
    workers = workers or min(os.cpu_count() or 1, 8)
    first = next(((p, a) for p in files if (a := read_or_none((p, resize))) is not None), None)
    if first is None:
        raise AutoencError(f"none of the {len(files)} image files could be read")
    size = first[1].shape[:2]
    per_batch = pictures_per_pass(model, size, max_memory_mb)
    shape = (len(files), model.latent_channels, -(-size[0] // DOWNSCALE), -(-size[1] // DOWNSCALE))
    done, skipped = [], []
    with atomic_path(target) as tmp, worker_pool(workers) as pool:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        for start in range(0, len(files), per_batch):
            chunk = files[start:start + per_batch]
            pictures = list(pool.map(read_or_none, [(p, resize) for p in chunk], chunksize=max(1, len(chunk) // workers)))
            good = [(p, a) for p, a in zip(chunk, pictures) if a is not None]
            skipped += [p for p, a in zip(chunk, pictures) if a is None]
            for p, a in good:
                if a.shape[:2] != size:
                    raise AutoencError(f"{p}: is {a.shape[1]}x{a.shape[0]}, the stack's pictures are {size[1]}x{size[0]} "
                                       f"({first[0].name}); give --resize N to make them one size")
            if good:
                steps = None if progress is None or not refine else \
                    (lambda d, t, start=start, n=len(chunk): progress(start + n * d / t, len(files)))
                array[len(done):len(done) + len(good)] = encode_rows(model, [a for _, a in good], per_batch, max_memory_mb,
                                                                     refine, steps)
                done += [p for p, _ in good]
            if progress is not None:
                progress(start + len(chunk), len(files))
        array.flush()
        del array
        if skipped:  # fewer rows than files: the header says how many
            rows = tmp.with_name(tmp.name + ".rows.tmp")
            with open(rows, "wb") as f:
                np.save(f, np.load(tmp, mmap_mode="r")[:len(done)])
            os.replace(rows, tmp)
    meta = {"format": FORMAT, "version": 1, "shape": [len(done), *shape[1:]], "dtype": dtype, "resize": resize,
            "weights": weights, "paths": [str(p) for p in done], "skipped": [str(p) for p in skipped]}
    if refine:
        meta["refine"] = Refinement(refine).to_json()
    write_text_atomic(sidecar(target), json.dumps(meta, indent=1) + "\n")
    return Stacked(done, skipped, (len(done), *shape[1:]))


def pictures_per_pass(model, size: tuple[int, int], max_memory_mb: float | None = None) -> int:
    """How many pictures of `size` (rows, columns) go through the encoder at once: as many as fit --max-memory
    (tiles.plan's budget) up to BATCH_PIXELS, or 1 when one picture needs tiles of its own."""
    cells = (-(-size[0] // DOWNSCALE), -(-size[1] // DOWNSCALE))
    tile = plan(model.encoder, 3, True, cells, max_memory_mb)
    if tile.window != cells:
        return 1
    return max(1, min(BATCH_PIXELS // (size[0] * size[1]), tile.per_pass))


def encode_rows(model, pictures: list[np.ndarray], per_batch: int, max_memory_mb: float | None = None,
                refine: int = 0, progress=None) -> np.ndarray:
    """Latents of same-size pictures: all in one pass when several fit, else one at a time in tiles; each
    refined `refine` steps (the pictures of a pass refined together)."""
    if per_batch == 1:
        return np.stack([encode_picture(model, a, max_memory_mb, refine=refine) for a in pictures])
    padded = np.stack([pad_to_multiple(a) for a in pictures])
    latents = encode_images(model, padded)
    if not refine:
        return latents
    size = (pictures[0].shape[1], pictures[0].shape[0])
    return refine_latents(model, torch.from_numpy(padded).permute(0, 3, 1, 2), torch.from_numpy(latents), refine, size,
                          max_memory_mb, progress=progress).numpy()
