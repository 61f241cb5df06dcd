"""Weights files: safetensors with the model's config in the metadata, and the bundled default.

A file alone rebuilds its network: metadata holds the format version, channel multiplier, input size,
pixel encoding and colour space, plus free-form provenance (data, steps, date, version).
safetensors never unpickles anything, so a hostile file cannot run code.
"""

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from autoenc_cli.model.choices import COLORS, LATENTS
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import atomic_path, regular_file
from autoenc_cli.model.autoencoder import IMAGE_SIZE, Autoencoder, relu_slope, swap_relus

FORMAT = "autoenc-weights"
FORMAT_VERSION = "1"
PIXEL_ENCODING = "v/64-2"


def default_weights_path() -> Path | None:
    """The weights shipped inside the package, or None while none are bundled."""
    path = Path(str(resources.files("autoenc_cli") / "weights" / "default.safetensors"))
    return path if path.is_file() else None


def model_config(model: Autoencoder, color: str = "rgb") -> dict[str, str]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "channel_multiplier": str(model.channel_multiplier),
        "width": str(model.channel_multiplier),  # the same number under its old name, for autoenc builds made before the rename
        "input_size": str(IMAGE_SIZE),
        "pixel_encoding": PIXEL_ENCODING,
        "color": color,
        "latent": model.latent,  # relu (the seed's) or linear; files without it are relu
        # saved during training's leaky-ReLU phase: the slope the network was validated with (0: the seed's plain ReLUs)
        "relu_slope": repr(relu_slope(model)),
    }


def save_weights(model: Autoencoder, path: str | os.PathLike, provenance: dict | None = None, color: str | None = None) -> None:
    """color: the encoding the model was trained in (default: the model's own)."""
    state = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = model_config(model, color or getattr(model, "color", "rgb"))
    metadata["provenance"] = json.dumps(provenance or {}, sort_keys=True)
    metadata["parameters"] = str(sum(p.numel() for p in model.parameters()))
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def channel_multiplier(meta: dict[str, str]) -> int:
    """The network's channel multiplier from weights metadata (files written before the rename call it width)."""
    return int(meta.get("channel_multiplier", meta.get("width", "")))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The safetensors header metadata, or AutoencError if the file is not a safetensors file.

    Read from one open file, not with safe_open(...).metadata(): safe_open opens the path twice, and a state
    replaced between the two (a save while `autoenc info` or a test reads it) failed with a size mismatch."""
    path = Path(path)
    regular_file(path, "weights file")  # a FIFO or device is refused before it is opened
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("file too short")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > 100_000_000 or n + 8 > os.fstat(f.fileno()).st_size:
                raise ValueError("bad header length")
            header = json.loads(f.read(n))
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise ValueError("bad metadata")
        return meta
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise AutoencError(f"{path}: not a safetensors weights file") from None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Autoencoder, dict[str, str]]:
    """Rebuild the network described by a weights file and load it; errors name the file and problem."""
    path = Path(path)
    meta = read_metadata(path)
    if "info" in meta and "param_groups" in meta:  # checkpoint.save_state's metadata
        raise AutoencError(f"{path}: is a training state (for --resume), not weights; give the weights saved beside it, "
                           f"{path.parent / 'model.safetensors'}")
    if meta.get("format") != FORMAT:
        raise AutoencError(f"{path}: safetensors file without autoenc metadata (not made by autoenc train)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise AutoencError(f"{path}: weights format version {meta.get('format_version')!r}; this autoenc reads {FORMAT_VERSION}")
    if meta.get("pixel_encoding") != PIXEL_ENCODING or meta.get("input_size") != str(IMAGE_SIZE):
        raise AutoencError(f"{path}: unsupported pixel encoding or input size in metadata")
    color = meta.get("color", "rgb")
    if color not in COLORS:
        raise AutoencError(f"{path}: unknown colour encoding {color!r} in metadata (this autoenc knows {', '.join(COLORS)})")
    latent = meta.get("latent", "relu")
    if latent not in LATENTS:
        raise AutoencError(f"{path}: unknown latent {latent!r} in metadata (this autoenc knows {', '.join(LATENTS)})")
    try:
        multiplier = channel_multiplier(meta)
        if not 1 <= multiplier <= 16:
            raise ValueError
    except ValueError:
        raise AutoencError(f"{path}: bad channel_multiplier {meta.get('channel_multiplier', meta.get('width'))!r} in metadata") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise AutoencError(f"{path}: damaged safetensors file ({e})") from None
    try:
        slope = float(meta.get("relu_slope", "0"))
        if not 0 <= slope < 1:
            raise ValueError
    except ValueError:
        raise AutoencError(f"{path}: bad relu_slope {meta.get('relu_slope')!r} in metadata") from None
    model = Autoencoder(multiplier, color, latent)
    swap_relus(model, slope)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise AutoencError(f"{path}: missing tensor {missing[0]} (channel multiplier {multiplier})")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise AutoencError(f"{path}: unexpected tensor {extra[0]}")
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            raise AutoencError(f"{path}: tensor {name} has shape {tuple(state[name].shape)}, expected {tuple(tensor.shape)} for channel multiplier {multiplier}")
        if not torch.isfinite(state[name]).all():
            raise AutoencError(f"{path}: tensor {name} contains NaN or inf")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval(), meta


BUNDLED_NAME = "default"  # what -w, --init and `autoenc info` take for the bundled weights (./default: a file of that name)


def resolve_weights(path: str | os.PathLike | None) -> Path:
    """The weights the user named, else (None or "default") the bundled default, else a clear error."""
    if path is not None and os.fspath(path) != BUNDLED_NAME:
        return Path(path)
    default = default_weights_path()
    if default is None:
        raise AutoencError("no bundled default weights in this build: pass -w/--weights FILE (made by autoenc train)")
    return default


def provenance(meta: dict[str, str]) -> dict:
    try:
        return json.loads(meta.get("provenance", "{}"))
    except ValueError:
        return {}


BARELY_TRAINED_DB = 20.0  # validation PSNR under which reconstructions are mostly blur or flat colour


def barely_trained_psnr(prov: dict) -> float | None:
    """The validation PSNR recorded in provenance if it says the weights were saved barely trained, else None."""
    psnr = prov.get("val_psnr")
    if isinstance(psnr, (int, float)) and psnr == psnr and psnr < BARELY_TRAINED_DB:
        return float(psnr)
    return None


def fingerprint(path: str | os.PathLike) -> dict[str, str]:
    """The file name and sha256 of a weights file: what a latent records about the weights that made it."""
    path = Path(path)
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
