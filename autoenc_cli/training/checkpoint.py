"""Training state for --resume (safetensors, no pickle) and the run's log.csv.

state.safetensors holds the model, the optimizer's tensors and, in its metadata, the step,
the run's config and the optimizer's hyperparameters. Random state needs no saving: every
epoch's order and flips are drawn from a generator seeded by (seed, epoch).
"""

import csv
import io
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import atomic_path, ensure_dir, refuse_inside, remove_stale_temps, write_text_atomic
from autoenc_cli.model.weights import read_metadata

STATE_FILE = "state.safetensors"
LOG_FILE = "log.csv"
LOG_COLUMNS = ["step", "epoch", "lr", "train_loss", "images_per_s", "elapsed_s", "val_loss", "val_psnr", "event"]


def save_state(path: Path, model: torch.nn.Module, optimizer, info: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, slots in opt["state"].items():
        for key, value in slots.items():
            tensors[f"opt.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    meta = {"info": json.dumps(info), "param_groups": json.dumps(opt["param_groups"])}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def state_info(path: Path) -> dict:
    """The info a training state holds in its header (step, config, ...), read without loading its tensors."""
    try:
        info = json.loads(read_metadata(path)["info"])
        int(info["step"]), dict(info["config"])
        return info
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AutoencError(f"{path}: damaged training state (unreadable info: {e})") from None


def saved_step(out: Path) -> int | None:
    """The step of the training state saved in the run folder `out`, or None when it holds none."""
    path = out / STATE_FILE
    return int(state_info(path)["step"]) if path.is_file() else None


def load_state(path: Path, model: torch.nn.Module, optimizer) -> dict:
    """Restore model and optimizer in place; return the saved info (step, config, ...)."""
    if not path.is_file():
        raise AutoencError(f"{path}: no training state to resume from (train without --resume first)")
    try:
        tensors = load_file(str(path))
        meta = read_metadata(path)
        info = json.loads(meta["info"])
        groups = json.loads(meta["param_groups"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        raise AutoencError(f"{path}: damaged training state ({e})") from None
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError:
        raise AutoencError(f"{path}: training state is for a different network (--channel-multiplier)") from None
    opt_state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, index, key = name.split(".", 2)
            opt_state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    for param, slots in optimizer.state.items():  # saved contiguous; the parameters may be channels_last,
        for key, value in slots.items():  # and fused Adam walks both in memory order: give them the same layout
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
    return info


class Log:
    """log.csv rows kept in memory and rewritten atomically at every checkpoint."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        self.rows: list[dict] = []
        if resume_step is not None and path.is_file():
            with open(path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= resume_step]

    def add(self, **row) -> None:
        if self.rows and int(self.rows[-1]["step"]) == row["step"]:
            self.rows[-1].update({k: v for k, v in row.items() if v != ""})
        else:
            self.rows.append(row)

    def flush(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, LOG_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, buf.getvalue())


def read_log(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def prepare_run_folder(out: Path, data: str, resume: bool, main: bool) -> None:
    """Fail before any work if --out cannot be made, and never start a fresh run over a saved one."""
    refuse_inside(out, data, "an --out")  # its samples would become training images
    if not resume:  # (resuming, load_state says so if there is nothing to resume)
        if (out / STATE_FILE).exists():
            raise AutoencError(f"{out}: holds a training run already ({STATE_FILE}); continue it with --resume, "
                               "or give another --out (or delete the folder) to start afresh")
        ensure_dir(out)
    if main:
        remove_stale_temps(out)
        remove_stale_temps(out / "samples")


def remove_if_empty(folder: Path) -> None:
    for f in (folder / "samples", folder):
        try:
            f.rmdir()  # only ever removes an empty folder
        except OSError:
            pass
