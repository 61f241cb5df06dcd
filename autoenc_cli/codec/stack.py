"""Features for a whole dataset in one file: `autoenc encode DIR_OR_FILES --resize 64 --stack features.npy`.

FILE.npy holds one (N, C, H/16, W/16) array, row i the latent of paths[i]; FILE.npy.json (plain JSON) lists
the paths, the pictures skipped as unreadable, the dtype, --resize and the weights. Both load with numpy
and json alone:

    z = numpy.load("features.npy")                       # (N, 128, 4, 4) for --resize 64
    paths = json.load(open("features.npy.json"))["paths"]

The pictures go through the encoder a batch per forward pass, as a job (data/jobs.py): under torchrun the batches
are shared among the processes, and a killed run continues where it stopped. The batches are the same whatever the
number of processes, so the array is the same bytes. FILE.npy and its sidecar appear together when every batch is
done, written through a memory map (memory stays the size of a batch), never half-written.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autoenc_cli.codec.budget import check_steps
from autoenc_cli.codec.encoding import check_resize, encode_images, encode_picture, pad_to_multiple, read_picture
from autoenc_cli.codec.refine import Refinement, refine as refine_latents
from autoenc_cli.codec.tiles import plan
from autoenc_cli.data.jobs import consecutive, job_identity, refinement_steps, run_job, start_job
from autoenc_cli.data.reading import image_size, worker_pool
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.fileio import atomic_paths, read_regular_text
from autoenc_cli.model.autoencoder import DOWNSCALE

FORMAT = "autoenc-stack"
BATCH_PIXELS = 2**22  # at most, pixels per forward pass (1,024 pictures of 64x64), within --max-memory
DTYPES = ("float32", "float16")
JOB_BATCHES = 16  # a one-pass stack is cut into at least this many batches (when it has the pictures), for processes to share


@dataclass
class Stacked:
    paths: list[Path]
    skipped: list[tuple[Path, str]]  # (file, why)
    shape: tuple[int, ...]


def read_or_why(job: tuple[Path, int | None]) -> tuple[np.ndarray | None, str]:
    """A picture, or None and the one-line reason it cannot be read."""
    try:
        return read_picture(*job), ""
    except AutoencError as e:
        return None, str(e)


def sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def job_folder(target: Path) -> Path:
    """Where an unfinished stack keeps its batches: a hidden folder beside it."""
    return target.with_name(f".{target.name}.job")


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


def shown_size(path: Path, resize: int | None) -> tuple[int, int] | None:
    """(rows, columns) a picture is encoded at, from its header; None when the header cannot be read."""
    if resize:
        return (resize, resize) if image_size(path) else None
    size = image_size(path)
    return (size[1], size[0]) if size else None


def encode_stack(model, files: list[Path], target: Path, resize: int | None, dtype: str = "float32",
                 weights: dict | None = None, progress=None, workers: int | None = None, max_memory_mb: float | None = None,
                 refine: int = 0, say=None) -> Stacked | None:
    """Encode `files` (pictures of one size, or any with resize) into one array at `target`, and its sidecar;
    refine: steps of refinement of each latent (refine.py), recorded in the sidecar. Under torchrun every process
    calls it and takes its share; rank 0 writes the array and returns what it holds, the others return None."""
    if dtype not in DTYPES:
        raise AutoencError(f"--dtype {dtype}: --stack stores {' or '.join(DTYPES)} (int8 scales are per latent)")
    check_resize(resize)
    refine = check_steps(refine)
    sizes = [shown_size(p, resize) for p in files]
    first = next((i for i, s in enumerate(sizes) if s), None)
    if first is None:
        raise AutoencError(f"none of the {counted(len(files), 'image file')} could be read")
    size = sizes[first]
    other = next((i for i, s in enumerate(sizes) if s and s != size), None)
    if other is not None:
        raise one_size_error(files[other], sizes[other], files[first], size)
    per_batch = pictures_per_pass(model, size, max_memory_mb)
    options = {"--dtype": dtype, "--resize": resize, "--refine": refine, "--max-memory": max_memory_mb}
    job = start_job(job_folder(target), job_identity("encode --stack", files, weights, options),
                    lambda processes: job_batches(len(files), per_batch, refine, processes), [1] * len(files), say)
    workers = workers or max(1, min((os.cpu_count() or 1) // job.world, 8))
    with worker_pool(workers) as pool:
        def do_batch(items: list[int], within):
            read = list(pool.map(read_or_why, [(files[i], resize) for i in items], chunksize=max(1, len(items) // workers)))
            good = [i for i, (a, _) in zip(items, read) if a is not None]
            for i, (a, _) in zip(items, read):
                if a is not None and a.shape[:2] != size:  # the header said otherwise (a damaged or odd file)
                    raise one_size_error(files[i], a.shape[:2], files[first], size)
            steps = refinement_steps(within) if refine else None
            latents = encode_rows(model, [a for a, _ in read if a is not None], per_batch, max_memory_mb, refine, steps) \
                if good else np.zeros((0,), np.float32)
            skipped = [[i, why] for i, (a, why) in zip(items, read) if a is None]
            return {"good": good, "skipped": skipped}, {"latents": latents.astype(dtype)}
        run_job(job, do_batch, progress)
    if job.rank != 0:
        return None
    with atomic_paths(target, sidecar(target)) as (array_tmp, sidecar_tmp):  # the pair appears together
        result = write_rows(job, files, array_tmp, size, model.latent_channels, dtype)
        meta = {"format": FORMAT, "version": 1, "shape": list(result.shape), "dtype": dtype, "resize": resize,
                "weights": weights, "paths": [str(p) for p in result.paths], "skipped": [str(p) for p, _ in result.skipped]}
        if refine:
            meta["refine"] = Refinement(refine).to_json()
        sidecar_tmp.write_bytes((json.dumps(meta, indent=1) + "\n").encode("utf-8", "surrogateescape"))
    job.close()
    return result


def job_batches(count: int, per_pass: int, refine: int, processes: int) -> list[list[int]]:
    """Consecutive pictures in batches of at most per_pass. One pass: the batches never depend on the number of
    processes (so the array is the same bytes however many share it), and at least JOB_BATCHES of them where there
    are pictures enough, for up to that many processes. Refinement: two batches per process (a batch of 10 64x64
    crops refines several times faster per picture than 10 batches of one on a CPU: larger batches, fewer of them),
    so the latents depend on the processes within float rounding (tests/test_jobs.py says how close)."""
    split = 2 * processes if refine else JOB_BATCHES
    return consecutive(count, min(per_pass, -(-count // split)))


def one_size_error(path: Path, shape: tuple[int, int], first: Path, size: tuple[int, int]) -> AutoencError:
    return AutoencError(f"{path}: is {shape[1]}x{shape[0]}, the stack's pictures are {size[1]}x{size[0]} "
                        f"({first.name}); give --resize N to make them one size")


def write_rows(job, files: list[Path], path: Path, size: tuple[int, int], channels: int, dtype: str) -> Stacked:
    """Rank 0, every batch done: the parts' latents in file order into a .npy at `path`, through a memory map."""
    rows = sum(len(part.record["good"]) for part in job.parts(arrays=False))
    shape = (rows, channels, -(-size[0] // DOWNSCALE), -(-size[1] // DOWNSCALE))
    done, skipped = [], []
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    for part in job.parts():
        good = part.record["good"]
        if good:
            array[len(done):len(done) + len(good)] = part.arrays["latents"]
        done += [files[i] for i in good]
        skipped += [(files[i], why) for i, why in part.record["skipped"]]
    array.flush()
    del array
    return Stacked(done, skipped, shape)


def pictures_per_pass(model, size: tuple[int, int], max_memory_mb: float | None = None) -> int:
    """How many pictures of `size` (rows, columns) go through the encoder at once: as many as fit --max-memory
    (tiles.plan's budget) up to BATCH_PIXELS, or 1 when one picture needs tiles of its own."""
    cells = (-(-size[0] // DOWNSCALE), -(-size[1] // DOWNSCALE))
    tile = plan(model.encoder, 3, True, cells, max_memory_mb)
    if tile.window != cells:
        return 1
    return max(1, min(BATCH_PIXELS // (size[0] * size[1]), tile.per_pass))


def encode_rows(model, pictures: list[np.ndarray], per_batch: int, max_memory_mb: float | None = None,
                refine: int = 0, progress=None, precision: str = "fp32") -> np.ndarray:
    """Latents of same-size pictures: all in one pass when several fit, else one at a time in tiles; each
    refined `refine` steps (the pictures of a pass refined together)."""
    if per_batch == 1:
        return np.stack([encode_picture(model, a, max_memory_mb, precision, refine, one_of(progress, k, len(pictures)))
                         for k, a in enumerate(pictures)])
    padded = np.stack([pad_to_multiple(a) for a in pictures])
    latents = encode_images(model, padded, precision)
    if not refine:
        return latents
    size = (pictures[0].shape[1], pictures[0].shape[0])
    return refine_latents(model, torch.from_numpy(padded).permute(0, 3, 1, 2), torch.from_numpy(latents), refine, size,
                          max_memory_mb, precision, progress=progress).numpy()


def one_of(progress, k: int, count: int):
    """progress(done, total) of the work on picture k of `count` -> the same for all of them; None stays None."""
    return None if progress is None else (lambda done, total: progress(k * total + done, count * total))
