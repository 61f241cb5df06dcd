"""Latent files on disk: a plain `.npy` array plus a small JSON sidecar, both readable without autoenc.

    z.npy       (channels, height/16, width/16), float32, float16 or int8, channel first
    z.npy.json  {"format": "autoenc-latent", "version": 1, "original_size": [W, H],
                 "padded_size": [W16, H16], "dtype": "int8", "shape": [C, h, w],
                 "scale": [... one per channel, int8 only ...], "resize": null or N,
                 "weights": {"file": "model.safetensors", "sha256": "..."},
                 "refine": {"steps": 25, ...}}  (only for a refined latent: codec/refine.py)

The value of channel c is z[c] * scale[c] for int8 and z[c] itself otherwise. The decoded
picture is cropped to original_size (the top-left corner of the padded picture). A `.npy`
without a sidecar is a float latent of a picture 16 times its height and width, as written
by autoenc 0.1 (a (128, 4, 4) float32 array decodes to 64x64).
"""

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autoenc_cli.codec.inputs import check_latent_shape
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import open_regular, read_regular_text, write_files_atomic
from autoenc_cli.model.autoencoder import DOWNSCALE

NPY_MAGIC = b"\x93NUMPY"

FORMAT = "autoenc-latent"
VERSION = 1
DTYPES = ("float32", "float16", "int8")
INT8_MAX = 127


@dataclass
class Latent:
    values: np.ndarray  # (C, h, w) float32, dequantized
    original_size: tuple[int, int]  # (width, height) of the picture it came from
    stored_dtype: str = "float32"
    meta: dict = field(default_factory=dict)  # the sidecar, {} when there was none

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.values.shape[2] * DOWNSCALE, self.values.shape[1] * DOWNSCALE


def sidecar_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def is_sidecar(path: str | os.PathLike) -> bool:
    return Path(path).name.endswith(".npy.json")


def check_dtype(dtype: str) -> str:
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise AutoencError(f"unknown latent dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return dtype


def quantize(z: np.ndarray, dtype: str) -> tuple[np.ndarray, list[float] | None]:
    """float32 (C, h, w) -> the stored array and, for int8, its per-channel scales.

    A channel's scale is max |z| / 127, written with 3 significant digits (short in the sidecar;
    the largest value may land a fraction of a step past 127 and is clipped to it).
    """
    check_dtype(dtype)
    if dtype != "int8":
        return z.astype(dtype), None
    peak = np.abs(z).reshape(len(z), -1).max(1).astype(np.float64)
    scale = [float(f"{p / INT8_MAX:.3g}") if p > 0 else 1.0 for p in peak]
    q = np.clip(np.rint(z / np.asarray(scale, np.float32)[:, None, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q, scale


def dequantize(stored: np.ndarray, scale: list[float] | None) -> np.ndarray:
    z = stored.astype(np.float32)
    if scale is not None:
        with np.errstate(over="ignore"):  # a sidecar's scale near float32's limit: inf, which load_latent refuses
            z *= np.asarray(scale, np.float32)[:, None, None]
    return z


FLOAT32_MAX = float(np.finfo(np.float32).max)


def usable_scale(s) -> bool:
    """A positive number that float32 holds (JSON gives ints of any size, and inf for 1e999)."""
    return type(s) in (int, float) and 0 < s <= FLOAT32_MAX


def latent_file_bytes(z: np.ndarray, original_size: tuple[int, int], dtype: str = "float32", resize: int | None = None,
                      weights: dict | None = None, refined: dict | None = None) -> tuple[bytes, bytes]:
    """The exact bytes of the .npy and of its sidecar that save_latent writes (eval --rd counts them)."""
    stored, scale = quantize(np.asarray(z, np.float32), dtype)
    meta = {
        "format": FORMAT, "version": VERSION,
        "original_size": [int(original_size[0]), int(original_size[1])],
        "padded_size": [stored.shape[2] * DOWNSCALE, stored.shape[1] * DOWNSCALE],
        "shape": list(stored.shape), "dtype": dtype, "scale": scale, "resize": resize, "weights": weights,
    }
    if refined is not None:  # how the latent was refined (codec/refine.py); a one-pass latent's sidecar is unchanged
        meta["refine"] = refined
    npy = io.BytesIO()
    np.save(npy, np.ascontiguousarray(stored), allow_pickle=False)
    lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items())
    return npy.getvalue(), ("{\n" + lines + "\n}\n").encode("utf-8")


def save_latent(path: str | os.PathLike, z: np.ndarray, original_size: tuple[int, int], dtype: str = "float32",
                resize: int | None = None, weights: dict | None = None, refined: dict | None = None) -> Path:
    """Write `path` (the .npy) and its sidecar, each atomically; return the sidecar's path."""
    npy, sidecar = latent_file_bytes(z, original_size, dtype, resize, weights, refined)
    side = sidecar_path(path)
    write_files_atomic({Path(path): npy, side: sidecar})  # both written before either is renamed: never a half pair
    return side


def check_npy_start(path: Path, f) -> None:
    """AutoencError unless the open file `f` starts as a .npy does (a sidecar or a picture is named as such)."""
    if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
        if is_sidecar(path):
            raise AutoencError(f"{path}: is the JSON sidecar of a latent; give the latent itself, {str(path)[:-5]}")
        raise AutoencError(f"{path}: not a .npy file (a latent that autoenc encode writes)")


def check_latent_files(paths: list[Path]) -> None:
    """Before any work (and before outputs are judged): every path is a .npy, by its first bytes."""
    for path in paths:
        with open_regular(path, "latent file") as f:
            check_npy_start(path, f)


def read_array(path: Path) -> np.ndarray:
    """The .npy itself, never unpickled."""
    with open_regular(path, "latent file") as f:
        check_npy_start(path, f)
        f.seek(0)
        try:
            check_npy_size(f, path)
            z = np.load(f, allow_pickle=False)
        except ValueError as e:
            if "pickle" in str(e).lower():
                raise AutoencError(f"{path}: latent has an object dtype (refused: it would need unpickling)") from None
            raise AutoencError(f"{path}: not a .npy latent file ({e})") from None
        except (OSError, EOFError, SyntaxError, TypeError, MemoryError) as e:  # a damaged header, a shape past memory
            raise AutoencError(f"{path}: not a .npy latent file ({e or type(e).__name__})") from None
    if not isinstance(z, np.ndarray) or z.dtype.kind not in "fiu":
        raise AutoencError(f"{path}: latent dtype {getattr(z, 'dtype', type(z))} is not numeric")
    return z


def check_npy_size(f, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The data the .npy header claims must be in the file: a truncated file, or a header claiming terabytes (which
    numpy would try to allocate before reading), is refused here. Leaves `f` at its start; returns the header's
    shape and dtype."""
    version = np.lib.format.read_magic(f)
    shape, _, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
    if dtype.hasobject:
        f.seek(0)
        return shape, dtype  # np.load refuses it, and says why
    needed, present = int(np.prod(shape, dtype=object)) * dtype.itemsize, os.fstat(f.fileno()).st_size - f.tell()
    if needed > present:
        raise AutoencError(f"{path}: truncated .npy latent file (its header promises {needed:,} bytes of values, it holds {present:,})")
    f.seek(0)
    return shape, dtype


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype that a .npy's header declares (its values checked present, not read)."""
    with open_regular(path, "latent file") as f:
        check_npy_start(path, f)
        f.seek(0)
        try:
            return check_npy_size(f, path)
        except (ValueError, OSError, EOFError, SyntaxError) as e:  # a damaged header
            raise AutoencError(f"{path}: not a .npy latent file ({e or type(e).__name__})") from None


SIDECAR_LIMIT = 16 * 2**20  # bytes: a latent's sidecar is a few hundred (int8: one scale per channel)


def read_sidecar(path: Path) -> dict:
    """The sidecar of the latent `path`, checked; {} when there is none."""
    side = sidecar_path(path)
    if not (side.exists() or side.is_symlink()):
        return {}
    try:
        meta = json.loads(read_regular_text(side, "latent sidecar", SIDECAR_LIMIT))
    except (ValueError, RecursionError) as e:
        raise AutoencError(f"{side}: unreadable latent sidecar ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AutoencError(f"{side}: not an autoenc latent sidecar (no \"format\": \"{FORMAT}\")")
    if meta.get("version") != VERSION:
        raise AutoencError(f"{side}: latent format version {meta.get('version')!r}; this autoenc reads {VERSION}")
    return meta


def _bad(side: Path, what: str) -> AutoencError:
    return AutoencError(f"{side}: {what}")


def check_against(meta: dict, z: np.ndarray, path: Path) -> tuple[tuple[int, int], list[float] | None]:
    """The sidecar must describe this very array: dtype, shape, sizes, scales."""
    side = sidecar_path(path)
    if meta.get("dtype") != str(z.dtype) or meta.get("dtype") not in DTYPES:
        raise _bad(side, f"says dtype {meta.get('dtype')!r} but {path.name} holds {z.dtype} (files out of step?)")
    if meta.get("shape") != list(z.shape):
        raise _bad(side, f"says shape {meta.get('shape')} but {path.name} has {list(z.shape)} (files out of step?)")
    size = meta.get("original_size")
    padded = (z.shape[2] * DOWNSCALE, z.shape[1] * DOWNSCALE)
    if (not isinstance(size, list) or len(size) != 2 or not all(type(v) is int for v in size)
            or not all(1 <= v <= p for v, p in zip(size, padded))):
        raise _bad(side, f"original_size {size!r} does not fit the latent's {padded[0]}x{padded[1]} pixels")
    scale = meta.get("scale")
    if z.dtype == np.int8:
        if (not isinstance(scale, list) or len(scale) != z.shape[0]
                or not all(usable_scale(s) for s in scale)):
            raise _bad(side, f"int8 latent needs {z.shape[0]} positive finite scales")
    else:
        scale = None
    return (size[0], size[1]), scale


def load_latent(path: str | os.PathLike, channels: int | None = None) -> Latent:
    """Read and check a latent and its sidecar: (channels, h, w) finite numbers, dequantized to float32.

    channels=None accepts any channel count (to inspect a file without a network at hand).
    """
    path = Path(path)
    z = read_array(path)
    if z.ndim == 4 and z.shape[0] == 1:
        z = z[0]
    check_latent_shape(z.shape, channels, str(path))
    meta = read_sidecar(path)
    if meta:
        size, scale = check_against(meta, z, path)
    elif z.dtype == np.int8:
        raise AutoencError(f"{path}: int8 latent without its sidecar {sidecar_path(path).name} (it holds the scales)")
    else:
        size, scale = (z.shape[2] * DOWNSCALE, z.shape[1] * DOWNSCALE), None
    values = dequantize(z, scale)
    if not np.isfinite(values).all():
        raise AutoencError(f"{path}: latent contains NaN or inf")
    return Latent(values, size, str(z.dtype), meta)


def without_sidecars(paths: list[Path]) -> list[Path]:
    """Drop `x.npy.json` when `x.npy` is in the list too (as `decode latents/*` passes both)."""
    names = {str(p) for p in paths}
    return [p for p in paths if not (is_sidecar(p) and str(p)[:-5] in names)]


def bits_per_pixel(latent_shape: tuple[int, ...], dtype: str, image_size: tuple[int, int]) -> float:
    """Bits of latent values (not counting the .npy header) per pixel of the original picture."""
    values = int(np.prod(latent_shape))
    return values * np.dtype(dtype).itemsize * 8 / (image_size[0] * image_size[1])
