"""Batch jobs over a collection: shared among torchrun's processes, resumable, one output at the end.

A job is a list of batches (each a list of item indices: pictures), planned when the job begins (from its inputs,
options and number of processes) and kept, so that every process and every rerun works on the same batches. Its
folder (beside the output, on storage every process sees) holds:

    job.json           what the job is: the command, its pictures (paths, sizes, times), weights, options, batches
    NNNNNNNN.part.npz  one finished batch: its record (JSON) and arrays, renamed into place whole, or absent

A start (the first, or a rerun after a kill) reads which batches are done; rank 0 says so, and the other batches are
split among the processes by pixels (shards.split_by_pixels). Each process saves each batch as it finishes it and
needs no message from the others after the start: a lost worker costs only its unfinished batch. Rank 0 then waits for
every part, reads them in order, writes the one output and removes the folder (close()). Without torchrun it is the
same, with one process: a killed job continues where it stopped.
"""

import io
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from autoenc_cli.data.shards import process_place, split_by_pixels
from autoenc_cli.errors import AutoencError, Interrupted, SharedError, counted
from autoenc_cli.fileio import ensure_dir, read_regular_text, remove_stale_temps, write_bytes_atomic, write_text_atomic

JOB_FILE = "job.json"
FORMAT = "autoenc-job"
POLL_SECONDS = 0.5  # rank 0 looks for the other processes' parts this often once its own are done
START_TIMEOUT_S = 600.0  # the processes wait this long for each other at the start (the one moment they talk)

Progress = Callable[[float, int, str], None]  # progress(pictures done, pictures in all, the step at hand), rank 0


@dataclass
class Part:
    batch: int
    record: dict
    arrays: dict[str, np.ndarray]


@dataclass
class Job:
    folder: Path
    batches: list[list[int]]
    mine: list[int]  # the batches this process does, in order
    rank: int
    world: int
    done_at_start: int  # pictures

    @property
    def total(self) -> int:
        return sum(len(b) for b in self.batches)

    def part_path(self, batch: int) -> Path:
        return self.folder / f"{batch:08d}.part.npz"

    def done_pictures(self) -> int:
        return sum(len(self.batches[b]) for b in done_batches(self.folder, len(self.batches)))

    def save(self, batch: int, record: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
        """One finished batch, renamed into place whole (a kill leaves it there complete, or not at all)."""
        buffer = io.BytesIO()
        np.savez(buffer, record=np.frombuffer(json.dumps(record).encode("utf-8", "surrogateescape"), np.uint8),
                 **(arrays or {}))
        write_bytes_atomic(self.part_path(batch), buffer.getvalue())

    def parts(self, arrays: bool = True) -> Iterator[Part]:
        """Every batch's part, in batch order, each read when it is reached (a stack of a million latents is never
        all in memory); arrays=False reads the records alone."""
        for batch in range(len(self.batches)):
            with np.load(self.part_path(batch)) as npz:
                record = json.loads(npz["record"].tobytes().decode("utf-8", "surrogateescape"))
                yield Part(batch, record, {k: npz[k] for k in npz.files if k != "record"} if arrays else {})

    def close(self) -> None:
        """The output is written: the job's folder goes."""
        shutil.rmtree(self.folder, ignore_errors=True)


def job_identity(command: str, files: list[Path], weights: dict | None, options: dict) -> dict:
    """What makes a job the same job when it is run again: the command, its pictures (their paths, sizes and
    modification times), the weights (by sha256) and the options that change its results."""
    from autoenc_cli.data.cache import file_key
    identity = {"command": command, "pictures": {"count": len(files), "key": file_key(files, FORMAT)},
                "weights": weights, "options": options}
    return json.loads(json.dumps(identity))  # as job.json will read back


def done_batches(folder: Path, count: int) -> set[int]:
    """The batches whose parts are in `folder` (a temporary file of a part being written is not one)."""
    found = set()
    for p in folder.glob("*.part.npz"):
        stem = p.name.removesuffix(".part.npz")
        if stem.isdigit() and int(stem) < count:
            found.add(int(stem))
    return found


def describe_change(old: dict, new: dict) -> str | None:
    """What differs between an unfinished job's description and this command's, in words; None when they match."""
    if old.get("command") != new["command"]:
        return f"of another command ({old.get('command')})"
    if old.get("pictures") != new["pictures"]:
        was, now = (old.get("pictures") or {}).get("count", "?"), new["pictures"]["count"]
        return f"over other pictures ({was} then, {now} now)" if was != now else "over other pictures (changed since)"
    if (old.get("weights") or {}).get("sha256") != (new["weights"] or {}).get("sha256"):
        return f"with other weights ({(old.get('weights') or {}).get('file', '?')})"
    changed = [f"{k} {old.get('options', {}).get(k)!r} (now {v!r})" for k, v in new["options"].items()
               if old.get("options", {}).get(k) != v]
    if changed or old.get("options") != new["options"]:
        return "with other options: " + (", ".join(changed) or "options this version does not know")
    return None


def prepare_folder(folder: Path, identity: dict, batches: list[list[int]]) -> dict:
    """Rank 0, before any process plans: the job's folder made, with its description (identity, the batches, and a
    token the other processes read back to prove they see the same folder), or an unfinished job's checked to be
    this one. Returns the description: a continued job keeps the batches it began with."""
    job_file = folder / JOB_FILE
    if job_file.is_file():
        old = read_description(folder) or {}
        change = describe_change(old, identity) if old.get("format") == FORMAT else "this version cannot read"
        if change:
            raise AutoencError(f"{folder}: holds an unfinished job {change}; rerun it as it began to finish it, or "
                               f"delete {folder} to start afresh")
        remove_stale_temps(folder)  # every process of the last start is gone: a half-written part is nobody's
        return old
    ensure_dir(folder)
    description = {"format": FORMAT, "version": 1, "token": os.urandom(8).hex(), **identity, "batches": batches}
    write_text_atomic(job_file, json.dumps(description) + "\n")
    return description


def read_description(folder: Path) -> dict | None:
    try:
        description = json.loads(read_regular_text(folder / JOB_FILE, "job description"))
    except (AutoencError, ValueError, RecursionError):
        return None
    return description if isinstance(description, dict) else None


def start_job(folder: Path, identity: dict, plan: Callable[[int], list[list[int]]], pixels: list[int], say=None) -> Job:
    """Join the job: rank 0 prepares its folder (a new job's batches are plan(processes)) and says (say(text)) what
    is done; every process then takes its share of the batches not yet done, about equal pixels each (pixels: each
    item's). identity: job_identity()."""
    rank, world, _, _ = process_place()
    if world == 1:
        description = prepare_folder(folder, identity, plan(world))
        token, done = description["token"], done_batches(folder, len(description["batches"]))
    else:
        token, done = agree_on_start(folder, identity, rank, lambda: plan(world))
    description = read_description(folder) or {}
    if description.get("token") != token:
        raise AutoencError(f"{folder}: process {rank} does not see the job folder that process 0 made; on several "
                           "machines, put the output (or --cache-dir) on storage that every machine shares")
    batches = description["batches"]
    left = [b for b in range(len(batches)) if b not in done]
    share = split_by_pixels([sum(pixels[i] for i in batches[b]) for b in left], world)[rank]
    job = Job(folder, batches, [left[i] for i in share], rank, world, sum(len(batches[b]) for b in done))
    if rank == 0 and job.done_at_start and say is not None:
        say(f"continuing: {job.done_at_start:,} of {job.total:,} pictures done (kept in {folder})")
    return job


def agree_on_start(folder: Path, identity: dict, rank: int, plan) -> tuple[str, set[int]]:
    """Under torchrun: rank 0 prepares the folder and lists the batches done; every process gets the folder's token
    and that list from it (the same list for all: no part is written before the barrier). The job's only messages
    between processes. A refusal on rank 0 ends every process, and only rank 0 says it."""
    import datetime

    import torch.distributed as dist

    from autoenc_cli.data.group import setup_distributed
    setup_distributed("cpu", START_TIMEOUT_S)  # gloo: a few bytes at the start, whatever the device
    message: list = [None]
    if rank == 0:
        try:
            description = prepare_folder(folder, identity, plan())
            message = [("ok", description["token"], sorted(done_batches(folder, len(description["batches"]))))]
        except AutoencError as e:
            message = [("refused", str(e), [])]
    dist.broadcast_object_list(message, src=0)
    dist.barrier(timeout=datetime.timedelta(seconds=START_TIMEOUT_S))
    dist.destroy_process_group()  # nothing more is said: each process saves its own parts
    status, token, done = message[0]
    if status != "ok":
        raise (AutoencError if rank == 0 else SharedError)(token)
    return token, set(done)


def run_job(job: Job, do_batch: Callable, progress: Progress | None = None, what: str = "picture") -> None:
    """do_batch(items, within) -> (record, arrays) for each of this process's batches, each saved as it is done;
    within(fraction, step) reports progress inside a batch (step: "step 3 of 10" of a refinement, or "").
    Rank 0 then waits for every other process's parts.
    progress (rank 0) sees the whole job's pictures. Ctrl-C keeps what is saved and says how to continue."""
    seen = Seen(job, progress)
    seen.show(0)  # the bar at once, before the first batch's set-up
    try:
        for batch in job.mine:
            items = job.batches[batch]
            record, arrays = do_batch(items, lambda fraction, step="": seen.show(fraction * len(items), step=step))
            job.save(batch, record, arrays)
            seen.show(0, look=True)
        while job.rank == 0 and seen.show(0, look=True) < job.total:  # the others' parts
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {job.done_pictures():,} of {counted(job.total, what)} done, kept in "
                          f"{job.folder}; run the same command again to continue") from None


class Seen:
    """Rank 0's view of the whole job's progress: the parts in the folder (looked at once per POLL_SECONDS) plus
    the fraction of its own batch."""

    def __init__(self, job: Job, progress: Progress | None):
        self.job, self.progress = job, progress if job.rank == 0 else None
        self.done, self.looked = job.done_at_start, 0.0

    def show(self, within: float, look: bool = False, step: str = "") -> int:
        """Draw the pictures done (the parts saved, plus `within` of the batch at hand, at `step` of its
        refinement); the count of the parts. Only rank 0 looks at the folder: the others draw nothing and wait for
        nobody, so they never list it (on shared storage, a listing per batch of every process is not free)."""
        now = time.monotonic()
        if self.job.rank == 0 and (look or (self.progress is not None and now - self.looked >= POLL_SECONDS)):
            self.done, self.looked = self.job.done_pictures(), now
        if self.progress is not None:
            self.progress(min(self.job.total, self.done + within), self.job.total, step)
        return self.done


def refinement_steps(within, first: float = 0.0, share: float = 1.0):
    """A refinement's progress(steps done, steps) -> within(fraction of the batch, "step d of t"), for the part of
    the batch from `first` of width `share` (a picture of several refined one after another)."""
    return lambda done, total: within(first + share * done / total, f"step {done:,} of {total:,}")


def consecutive(count: int, size: int) -> list[list[int]]:
    """Items 0..count-1 in batches of `size` (the last may be shorter)."""
    size = max(1, size)
    return [list(range(start, min(start + size, count))) for start in range(0, count, size)]


def share_sized(count: int, processes: int, cap: int, per_process: int = 4) -> int:
    """A batch size that gives every process about `per_process` batches (a lost batch costs little; the last
    ones even out), at most `cap` items."""
    return max(1, min(cap, -(-count // (per_process * processes))))


def cache_job_folder(cache_root: Path, command: str, inputs: list[Path]) -> Path:
    """Where a job without an output file of its own (eval, score to stdout) keeps its batches: in the cache folder,
    named by the command and its inputs (a rerun of the same command finds it)."""
    import hashlib
    key = hashlib.sha256(os.fsencode(command + "\0" + "\0".join(str(p.resolve()) for p in inputs))).hexdigest()[:16]
    return cache_root / "jobs" / f"{command.split()[0]}-{key}"
