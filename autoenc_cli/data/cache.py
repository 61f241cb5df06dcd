"""The dataset caches: pictures decoded once into uint8 `.npy` files under the cache directory, keyed by the files'
paths, sizes and modification times. 64x64 pictures go into an N x 64 x 64 x 3 array read a row at a time
(ImageRows); photographs of other sizes into pyramids (pyramids.py). Training and eval read these, never a JPEG again.
"""

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autoenc_cli.data.reading import decode_or_none, worker_pool
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import atomic_path, read_regular_text, regular_file, resolved, write_text_atomic
from autoenc_cli.model.autoencoder import IMAGE_SIZE

CACHE_VERSION = 1  # bump when decoding or resizing changes


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "autoenc"


def file_key(files: list[Path], kind: str) -> str:
    """A hash of `kind` and the files' real paths, sizes and modification times (resolving each folder once)."""
    h = hashlib.sha256(kind.encode())
    folders: dict[Path, Path] = {}
    for p in files:
        try:
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                real, st = resolved(p), os.stat(p)
            else:
                if p.parent not in folders:
                    folders[p.parent] = resolved(p.parent)
                real = folders[p.parent] / p.name
        except OSError:  # gone since it was listed, or a link to nowhere: decoding counts it as skipped
            h.update(os.fsencode(f"\n{p}\tunreadable"))
            continue
        h.update(os.fsencode(f"\n{real}\t{st.st_size}\t{st.st_mtime_ns}"))
    return h.hexdigest()[:24]


class ImageRows:
    """The rows of an N x 64 x 64 x 3 uint8 `.npy`, read from the file on demand.

    Reads go through the page cache (pread), not a memory map, so the process's memory stays
    the size of a batch whatever the dataset's size.
    """

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            self.shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if fortran or dtype != np.uint8 or len(self.shape) != 4:
            raise ValueError(f"{path}: not a uint8 image cache")
        self.dtype = np.dtype(np.uint8)
        self.row_bytes = int(np.prod(self.shape[1:]))
        self.nbytes = self.row_bytes * self.shape[0]
        self.fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                out = np.empty((max(0, stop - start), *self.shape[1:]), np.uint8)
                if len(out):
                    os.preadv(self.fd, [out], self.offset + start * self.row_bytes)
                return out
            index = np.arange(start, stop, step)
        if isinstance(index, (int, np.integer)):
            return self[[index + len(self) if index < 0 else index]][0]
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), *self.shape[1:]), np.uint8)
        for i, j in enumerate(index.tolist()):
            if not 0 <= j < len(self):
                raise IndexError(j)
            os.preadv(self.fd, [out[i]], self.offset + j * self.row_bytes)
        return out

    def __array__(self, dtype=None, copy=None):
        return self[:] if dtype is None else self[:].astype(dtype)

    def __del__(self):
        try:
            os.close(self.fd)
        except (OSError, AttributeError):
            pass


class JoinedRows:
    """The rows of several caches (ImageRows or arrays) as one: row i is rows[part[i]][row[i]]."""

    def __init__(self, parts: list, part: np.ndarray, row: np.ndarray):
        self.parts, self.part, self.row = parts, part, row
        self.shape = (len(part), IMAGE_SIZE, IMAGE_SIZE, 3)
        self.nbytes = int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self[[index]][0]
        index = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), *self.shape[1:]), np.uint8)
        for p, rows in enumerate(self.parts):
            here = self.part[index] == p
            if here.any():
                out[here] = rows[self.row[index[here]]]
        return out

    def __array__(self, dtype=None, copy=None):
        return self[:] if dtype is None else self[:].astype(dtype)


@dataclass
class CachedImages:
    pixels: "ImageRows | JoinedRows | np.ndarray"  # N x 64 x 64 x 3 uint8
    skipped: int  # files that could not be decoded
    path: Path | None  # None for a machine's cache joined from its processes' parts
    missing: list[int] = field(default_factory=list)  # which of the files

    @staticmethod
    def joined(parts: "list[CachedImages]", members: list[list[int]]) -> "CachedImages":
        """One cache of files 0..n-1 from parts, part p holding the files members[p]: the rows in the files' order."""
        where = places_in_parts([part.missing for part in parts], members)
        n = sum(len(files) for files in members)
        kept = np.array([where[i] for i in range(n) if i in where], dtype=np.int64).reshape(-1, 2)
        missing = [i for i in range(n) if i not in where]
        return CachedImages(JoinedRows([c.pixels for c in parts], kept[:, 0], kept[:, 1]), len(missing), None, missing)


def places_in_parts(missing: list[list[int]], members: list[list[int]]) -> dict[int, tuple[int, int]]:
    """{file: (part, row)} of the files decoded into parts, part p holding the files members[p] less the positions
    missing[p] it could not decode (a file that is in no part has no place)."""
    where: dict[int, tuple[int, int]] = {}
    for p, (lost, files) in enumerate(zip(missing, members)):
        lost, row = set(lost), 0
        for k, i in enumerate(files):
            if k not in lost:
                where[i], row = (p, row), row + 1
    return where


def open_cache(files: list[Path], cache_dir, kind: str, opener):
    """(npy, meta, entry): the cache files for `files` decoded as `kind`, and opener(npy, info) if a readable
    entry is there already (None otherwise: a damaged entry is rebuilt)."""
    root = cache_root(cache_dir)
    key = file_key(files, kind)
    npy, meta = root / f"{key}.npy", root / f"{key}.json"
    if npy.exists() and meta.exists():
        try:
            regular_file(npy)  # the cache is ours, but anything may stand in its folder
            return npy, meta, opener(npy, json.loads(read_regular_text(meta)))
        except (AutoencError, OSError, ValueError, KeyError):
            pass
    return npy, meta, None


def decode_all(decode, files: list[Path], workers: int, progress=None, label: str = "images"):
    """decode(file) for every file in order, in `workers` processes, calling progress(done, total, label)."""
    chunks = max(1, min(64, len(files) // (8 * workers) or 1))
    pool = worker_pool(workers) if workers > 1 else None
    try:
        results = pool.map(decode, files, chunksize=chunks) if pool else map(decode, files)
        for i, result in enumerate(results):
            yield result
            if progress is not None:
                progress(i + 1, len(files), label)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def save_cache(npy: Path, meta: Path, array: np.ndarray, info: dict) -> bool:
    """Write a cache entry atomically (the array, then its description); False if the folder is not writable."""
    try:
        with atomic_path(npy) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)
        write_text_atomic(meta, json.dumps(info))
        return True
    except AutoencError:
        return False  # cache directory not writable: train from memory this time


def cached_images(files: list[Path], cache_dir=None, progress=None, label: str = "images", workers: int | None = None) -> CachedImages:
    """Decode `files` once into a uint8 cache (in parallel, with a progress callback); rows are read on demand."""
    npy, meta, entry = open_cache(files, cache_dir, f"v{CACHE_VERSION} {IMAGE_SIZE}", opened_images)
    if entry is not None:
        return entry
    workers = workers or min(len(files) // 256 + 1, os.cpu_count() or 1)
    out = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    n, missing = 0, []
    for i, arr in enumerate(decode_all(decode_or_none, files, workers, progress, label)):
        if arr is None:
            missing.append(i)
        else:
            out[n] = arr
            n += 1
    out = out[:n]
    if save_cache(npy, meta, out, {"files": len(files), "images": n, "skipped": len(missing), "missing": missing}):
        out = ImageRows(npy)
    return CachedImages(out, len(missing), npy, missing)


def opened_images(npy: Path, info: dict) -> CachedImages:
    # an entry written before `missing` was recorded is whole when nothing was skipped (else it is rebuilt: KeyError)
    missing = info["missing"] if info["skipped"] else info.get("missing", [])
    return CachedImages(ImageRows(npy), info["skipped"], npy, missing)
