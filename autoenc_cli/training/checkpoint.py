"""Training state for --resume (safetensors, no pickle) and the run's log.csv.

state.safetensors holds the model, the optimizer's tensors, the divergence guard's snapshots and, in its metadata,
the step, the run's config, the optimizer's hyperparameters and the guard's numbers. Random state needs no saving: every
epoch's order and flips are drawn from a generator seeded by (seed, epoch).
"""

import csv
import io
import json
import math
import os
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import (atomic_path, ensure_dir, read_regular, refuse_inside, regular_file, remove_stale_temps,
                                replace_target, write_text_atomic)
from autoenc_cli.model.weights import read_metadata

STATE_FILE = "state.safetensors"
LOG_FILE = "log.csv"
LOG_COLUMNS = ["step", "epoch", "lr", "train_loss", "images_per_s", "elapsed_s", "val_loss", "val_psnr", "event"]


def save_state(path: Path, model: torch.nn.Module, optimizer, info: dict, extra: dict | None = None) -> None:
    """extra: more named tensors (the divergence guard's snapshots, guard.*), read back by read_state."""
    opt = optimizer.state_dict()
    tensors = {**(extra or {}), **named_tensors("", model.state_dict(), opt["state"])}
    meta = {"info": json.dumps(info), "param_groups": json.dumps(opt["param_groups"])}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def named_tensors(prefix: str, weights: dict, slots: dict) -> dict[str, torch.Tensor]:
    """How a state stores a model and an optimizer's slots: PREFIXmodel.NAME and PREFIXopt.INDEX.KEY, on the CPU."""
    named = {f"{prefix}model.{k}": v.detach().cpu().contiguous() for k, v in weights.items()}
    for index, values in slots.items():
        for key, value in values.items():
            named[f"{prefix}opt.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return named


def state_info(path: Path) -> dict:
    """The info a training state holds in its header (step, config, ...), read without loading its tensors."""
    return read_header(path)[0]


def read_header(path: Path) -> tuple[dict, list]:
    """A training state's info and optimizer groups from its header, checked."""
    regular_file(path, "training state")
    try:
        meta = read_metadata(path)
        info, groups = json.loads(meta["info"]), json.loads(meta["param_groups"])
        check_info(info, groups)
        return info, groups
    except AutoencError as e:
        raise AutoencError(f"{path}: damaged training state ({str(e).removeprefix(f'{path}: ')})") from None
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise AutoencError(f"{path}: damaged training state (unreadable info: {e})") from None


def saved_step(out: Path) -> int | None:
    """The step of the training state saved in the run folder `out`, or None when it holds none."""
    path = out / STATE_FILE
    return int(state_info(path)["step"]) if path.exists() or path.is_symlink() else None


def read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict, list]:
    """A training state's tensors, info and optimizer groups, all read and checked (what --resume and `autoenc
    info` both go through: a truncated file fails here, not half-way into a run)."""
    if not (path.exists() or path.is_symlink()):
        raise AutoencError(f"{path}: no training state to resume from (train without --resume first)")
    info, groups = read_header(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise AutoencError(f"{path}: damaged training state ({e})") from None
    if not any(k.startswith("model.") for k in tensors):
        raise AutoencError(f"{path}: damaged training state (no model tensors)")
    return tensors, info, groups


INFO_NUMBERS = {"elapsed_s": (int, float), "window_loss": (int, float), "lr_scale": (int, float), "window_steps": int,
                "recoveries": int}  # what the training loop takes from a state's info besides step and config


def check_info(info, groups) -> None:
    """ValueError unless a state's info and optimizer groups hold what the training loop reads from them."""
    if not isinstance(info, dict) or type(info.get("step")) is not int or info["step"] < 0:
        raise ValueError("no step")
    if not isinstance(info.get("config"), dict):
        raise ValueError("no config")
    for key, kinds in INFO_NUMBERS.items():
        if key in info and (type(info[key]) is bool or not isinstance(info[key], kinds)):
            raise ValueError(f"{key} is {info[key]!r}")
    recent, snapshots = info.get("guard_recent", []), info.get("guard_snapshots", [])
    if not isinstance(recent, list) or not all(type(v) in (int, float) for v in recent):
        raise ValueError(f"guard_recent is {recent!r}")
    if not isinstance(snapshots, list) or not all(type(v) is int for v in snapshots):
        raise ValueError(f"guard_snapshots is {snapshots!r}")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError("no optimizer groups")


def model_tensors(path: Path, tensors: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    """Load the state's model tensors into `model`, or AutoencError: the state is for another network."""
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError:
        raise AutoencError(f"{path}: training state is for a different network (--channel-multiplier)") from None


def load_state(path: Path, model: torch.nn.Module, optimizer, saved: tuple | None = None) -> dict:
    """Restore model and optimizer in place; return the saved info (step, config, ...). saved: what read_state(path)
    gave already (--resume reads the state once: its config builds the network the tensors go into)."""
    tensors, info, groups = saved or read_state(path)
    model_tensors(path, tensors, model)
    opt_state: dict[int, dict] = {}
    try:
        for name, value in tensors.items():
            if name.startswith("opt."):
                _, index, key = name.split(".", 2)
                opt_state.setdefault(int(index), {})[key] = value
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise AutoencError(f"{path}: damaged training state (optimizer: {e})") from None
    for param, slots in optimizer.state.items():  # saved contiguous; the parameters may be channels_last,
        for key, value in slots.items():  # and fused Adam walks both in memory order: give them the same layout
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
    return info


# log.csv is rewritten at each log window, but not more often than this: a GPU logs several windows a second, and
# the log of a 100,000-step run (2,000 rows) takes about 12 ms to rewrite and sync
LOG_WRITE_SECONDS = 1.0


class Log:
    """log.csv rows kept in memory and rewritten atomically (never half-written) at log windows and checkpoints."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        self.rows: list[dict] = []
        self.written_at = -math.inf  # time.monotonic() of the last rewrite
        if resume_step is not None and (path.exists() or path.is_symlink()):
            self.rows = [r for r in read_log(path) if (r.get("step") or "").isdigit() and int(r["step"]) <= resume_step]

    def add(self, **row) -> None:
        if self.rows and int(self.rows[-1]["step"]) == row["step"]:
            self.rows[-1].update({k: v for k, v in row.items() if v != ""})
        else:
            self.rows.append(row)

    def flush_if_due(self) -> None:
        """The rows logged so far into the file, unless it was rewritten less than LOG_WRITE_SECONDS ago."""
        if time.monotonic() - self.written_at >= LOG_WRITE_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.written_at = time.monotonic()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, LOG_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, buf.getvalue())


def read_log(path: str | os.PathLike) -> list[dict]:
    """The rows of a log.csv, or AutoencError naming it and what is wrong (not a regular file, not UTF-8, not CSV)."""
    data = read_regular(path, "training log")
    nul = data.find(b"\0")
    if nul >= 0:  # what a crash can leave in a file's last blocks; csv would take it for text
        raise AutoencError(f"{path}: unreadable log (a NUL byte at offset {nul:,})")
    try:
        return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    except UnicodeDecodeError as e:
        raise AutoencError(f"{path}: unreadable log (not UTF-8: byte 0x{data[e.start]:02x} at offset {e.start:,})") from None
    except csv.Error as e:
        raise AutoencError(f"{path}: unreadable log ({e})") from None


RUN_FILES = (STATE_FILE, LOG_FILE, "model.safetensors", "best.safetensors", "curve.png")


def prepare_run_folder(out: Path, data: str, resume: bool, main: bool) -> None:
    """Fail before any work if --out cannot be made, and never start a fresh run over a saved one."""
    refuse_inside(out, data, "an --out")  # its samples would become training images
    if not resume:  # (resuming, load_state says so if there is nothing to resume)
        if (out / STATE_FILE).exists():
            raise AutoencError(f"{out}: holds a training run already ({STATE_FILE}); continue it with --resume, "
                               "or give another --out (or delete the folder) to start afresh")
        ensure_dir(out)
    check_run_files(out)
    if resume and ((out / LOG_FILE).exists() or (out / LOG_FILE).is_symlink()):
        try:  # a damaged log stops the resume here, before any work, as it would later
            read_log(out / LOG_FILE)
        except AutoencError as e:
            raise AutoencError(f"{e}; move it aside to resume without the rows it holds") from None
    if main:
        remove_stale_temps(out)
        remove_stale_temps(out / "samples")


def check_run_files(out: Path) -> None:
    """Whatever stands where the run's files go can be replaced: a device or FIFO named model.safetensors is refused
    before any work, not at the first save minutes later."""
    if not out.is_dir():
        return  # resuming a run that is not there: load_state says so
    for name in RUN_FILES:
        replace_target(out / name)
    samples = out / "samples"
    if (samples.exists() or samples.is_symlink()) and not samples.is_dir():
        raise AutoencError(f"{samples}: is not a folder; the run's sample pictures go there")


def remove_if_empty(folder: Path) -> None:
    for f in (folder / "samples", folder):
        try:
            f.rmdir()  # only ever removes an empty folder
        except OSError:
            pass
