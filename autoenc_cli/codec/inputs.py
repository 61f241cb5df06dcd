"""The one gate for what a user hands the codec, shared by the command line and the Python API: files (an
input must be a regular file, an output may not replace an input, an output's name says what it holds), the memory
budget, pictures and latents held in memory (their kind, dtype, shape, size, finite values, the megapixel cap) and
crop sizes. A check that names what the user gave takes `option`: its spelling on the command line (-o, the
default) or in Python (latent, image), so that each side reads its own (errors.shown_name).

Every refusal is one line that names the problem: AutoencError for a value the codec cannot take, TypeError for an
argument of the wrong Python type. The command line imports this module before it parses its options, so numpy and
torch are imported inside the checks that take arrays and tensors, never at the top (`autoenc --help` stays quick).
"""

import math
import numbers
import os
from pathlib import Path

from autoenc_cli.codec.budget import MIN_MAX_MEMORY_MB
from autoenc_cli.errors import AutoencError, shown_name
from autoenc_cli.fileio import check_writable, regular_file, resolved
from autoenc_cli.model.choices import DOWNSCALE, LATENT_CHANNELS

MAX_IMAGE_PIXELS = 64_000_000  # larger pictures are refused: a decompression bomb's header, or far past any memory
PICTURE_KINDS = "a PIL image, an H x W x 3 uint8 RGB array, or an N x 3 x H x W tensor (uint8, or float in [0, 1])"


# ---------------------------------------------------------------- files

def path_argument(value, what: str) -> Path:
    """A file name given to the API (str or os.PathLike) as a Path; TypeError for anything else."""
    if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
        raise TypeError(f"{what}: give a file name (str or pathlib.Path), not {type(value).__name__}")
    path = Path(value)
    if "\x00" in str(path):
        raise AutoencError(f"{path}: a file name cannot hold a NUL byte")
    return path


def check_inputs(paths: list[Path]) -> None:
    """Every input a regular file (a folder, a FIFO or a device is refused before any work)."""
    for p in paths:
        if p.is_dir():
            raise AutoencError(f"{p}: is a directory")
        regular_file(p)


def same_file(a: Path, b: Path) -> bool:
    """One file under two names: the same path once links are resolved, or a hard link (or another spelling on a
    case-insensitive disk) of an existing file."""
    if resolved(a) == resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one of them does not exist (yet)
        return False


def prepare_outputs(inputs: list[Path], targets: list[Path], option: str = "-o") -> None:
    """Before any work: no output may replace an input, a folder or anything else that is not a regular file (a
    device, a FIFO), and every output's folder must be creatable."""
    for t in targets:
        if any(same_file(t, p) for p in inputs):
            raise AutoencError(f"{t}: is also an input; refusing to overwrite it (give {shown_name(option)} another name)")
        check_writable(t)


# ---------------------------------------------------------------- what an output's name says it holds

LATENT_SUFFIX = ".npy"
LATENT_FILE = "a latent is a .npy file (NumPy data, with its .npy.json sidecar)"
# decode writes the format its output's suffix names. The lossy ones at a quality that keeps the network's detail:
# PNG, lossless, is the default.
JPEG_QUALITY = 95
WEBP_QUALITY = 95
PICTURE_FORMATS = {".png": ("PNG", {}), ".jpg": ("JPEG", {"quality": JPEG_QUALITY}),
                   ".jpeg": ("JPEG", {"quality": JPEG_QUALITY}), ".webp": ("WEBP", {"quality": WEBP_QUALITY}),
                   ".tif": ("TIFF", {}), ".tiff": ("TIFF", {})}
PICTURE_FORMATS_HELP = (f"PNG (.png), JPEG (.jpg, .jpeg; quality {JPEG_QUALITY}), WebP (.webp; quality {WEBP_QUALITY}) "
                        "or TIFF (.tif, .tiff), by the name's suffix")


def named_as(path: Path, suffix: str, holds: str, option: str = "-o") -> None:
    """An output whose name's suffix says it holds something else (a latent named out.png) is refused before any
    work: `holds` says what the file is, and the message which name would say so."""
    if path.suffix.lower() != suffix:
        better = (path.stem if path.suffix else path.name) + suffix
        raise AutoencError(f"{path}: {holds}; give {shown_name(option)} a name ending in {suffix}, such as {better}")


def picture_format(path: Path, option: str = "-o") -> tuple[str, dict]:
    """The Pillow format and save options a decoded picture named `path` is written with (PICTURE_FORMATS, by its
    suffix whatever its case); a suffix of no format here, or one this Pillow cannot write, is refused in one line."""
    from PIL import Image
    found = PICTURE_FORMATS.get(path.suffix.lower())
    if found is None:
        what = f"{path.suffix} is not a picture format decode writes" if path.suffix else "no suffix to name its format"
        raise AutoencError(f"{path}: {what}; give {shown_name(option)} a name ending in .png, .jpg, .webp or .tif")
    Image.init()
    if found[0] not in Image.SAVE:
        raise AutoencError(f"{path}: this installation's Pillow cannot write {found[0]}; give {shown_name(option)} a .png name")
    return found


def format_note(path: Path) -> str:
    """What a user reads of a decoded picture's format: the quality of a lossy one (JPEG quality 95), or nothing."""
    name, options = PICTURE_FORMATS.get(path.suffix.lower(), ("PNG", {}))
    return f"{'WebP' if name == 'WEBP' else name} quality {options['quality']}" if "quality" in options else ""


def check_pictures_given(paths: list[Path], python: bool = False) -> None:
    """A latent given to encode is named as such at once, with what to do instead (else it was refused only once its
    output was settled, as "not an image", after "exists" and "is also an input" for the outputs it implied)."""
    decode, refine = ("decode_file", "encode_file its original picture with refine=STEPS") if python else \
        ("`autoenc decode`", "encode its original picture with --refine STEPS")
    for p in paths:
        if p.suffix.lower() == LATENT_SUFFIX:
            raise AutoencError(f"{p}: is a latent, not a picture to encode: {decode} turns it back into a picture; to "
                               f"refine it, {refine}")


# ---------------------------------------------------------------- numbers

def is_number(value) -> bool:
    """An int or float (numpy's too), never a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_max_memory(value) -> float | None:
    """The memory budget of one picture's pass in MB (None: the device's default), finite and at least the smallest
    tile of the seed network (--max-memory, load(max_memory=...), Codec.max_memory)."""
    if value is None:
        return None
    if not is_number(value):
        raise TypeError(f"max_memory: give a number of MB (or None), not {type(value).__name__}")
    if not math.isfinite(value) or value < MIN_MAX_MEMORY_MB:
        raise AutoencError(f"max_memory {value}: give a finite number of MB, at least {MIN_MAX_MEMORY_MB}")
    return float(value)


def crop_size(size, latent_shape: tuple[int, ...]) -> tuple[int, int] | None:
    """decode(size=(width, height)): whole numbers from 1 to the latent's 16h x 16w pixels, or None (no crop)."""
    if size is None:
        return None
    if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(isinstance(v, numbers.Integral) and not
                                                                       isinstance(v, bool) for v in size):
        raise TypeError(f"size: give (width, height) as two whole numbers, not {size!r}")
    full_w, full_h = latent_shape[-1] * DOWNSCALE, latent_shape[-2] * DOWNSCALE
    w, h = int(size[0]), int(size[1])
    if not (1 <= w <= full_w and 1 <= h <= full_h):
        raise AutoencError(f"size ({w}, {h}): the latent decodes to {full_w}x{full_h} pixels; give a width from 1 to "
                           f"{full_w} and a height from 1 to {full_h}")
    return w, h


# ---------------------------------------------------------------- pictures in memory

def check_picture_size(width: int, height: int, what: str = "a picture") -> None:
    if width < 1 or height < 1:
        raise AutoencError(f"{what} of {width}x{height} pixels: nothing to encode")
    if width * height > MAX_IMAGE_PIXELS:
        raise AutoencError(f"{what} of {width}x{height} pixels: over the {MAX_IMAGE_PIXELS:,}-pixel limit")


def picture_array(picture):
    """A PIL image (any mode: 8-bit RGB, as files are read) or an H x W x 3 uint8 RGB array -> a C-contiguous
    H x W x 3 uint8 array (an array of any strides: OpenCV's BGR flipped with [..., ::-1] too)."""
    import numpy as np
    from PIL import Image

    from autoenc_cli.data.reading import to_rgb
    if isinstance(picture, Image.Image):
        check_picture_size(*picture.size, what="a PIL image")
        try:
            picture = np.asarray(to_rgb(picture), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as e:  # an Image.open()ed file that cannot be decoded
            raise AutoencError(f"a PIL image that cannot be decoded ({e or type(e).__name__})") from None
    elif not isinstance(picture, np.ndarray):
        raise TypeError(f"a picture: give {PICTURE_KINDS}, not {type(picture).__name__}"
                        + (" (for a file, use encode_file or PIL.Image.open)" if isinstance(picture, (str, os.PathLike)) else ""))
    if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
        raise AutoencError(f"an array of {picture.dtype} {picture.shape}: give H x W x 3 uint8 RGB (or a PIL image, or "
                           "an N x 3 x H x W tensor)")
    check_picture_size(picture.shape[1], picture.shape[0], "an array")
    return np.ascontiguousarray(picture)


def picture_batch(batch):
    """An N x 3 x H x W tensor, H and W multiples of 16: uint8 bytes, or floats in [0, 1] (NaN, inf and values
    outside refused: they would give a plausible picture, wrong). Returned as given."""
    import torch
    if batch.ndim != 4 or batch.shape[1] != 3 or batch.shape[2] % DOWNSCALE or batch.shape[3] % DOWNSCALE:
        raise AutoencError(f"a tensor of shape {tuple(batch.shape)}: give N x 3 x H x W, H and W multiples of 16")
    if batch.shape[0] == 0:
        raise AutoencError(f"a tensor of shape {tuple(batch.shape)}: an empty batch")
    check_picture_size(batch.shape[3], batch.shape[2], "a tensor's picture")
    if batch.dtype == torch.uint8:
        return batch
    if not batch.is_floating_point():
        raise AutoencError(f"a picture tensor of {batch.dtype}: give uint8 bytes, or floats in [0, 1]")
    if not ((batch >= 0) & (batch <= 1)).all():
        finite = batch[torch.isfinite(batch)]
        what = "NaN or inf values" if finite.numel() < batch.numel() else \
            f"values from {finite.min().item():g} to {finite.max().item():g}"
        raise AutoencError(f"a picture tensor with {what}: give RGB in [0, 1] (or uint8 bytes)")
    return batch


# ---------------------------------------------------------------- latents in memory

def check_latent_shape(shape: tuple[int, ...], channels: int | None, what: str = "decode()") -> None:
    """(C, h, w) with the channels the weights decode, no empty side, and within the megapixel cap once decoded
    (`what`: the latent's file, or decode() for one in memory)."""
    if len(shape) != 3 or (channels is not None and shape[0] != channels) or 0 in shape:
        c = channels or "C"
        raise AutoencError(f"{what}: latent shape {shape}, expected ({c}, H, W) such as ({c}, 4, 4)"
                           + (f" for weights of channel multiplier {channels // LATENT_CHANNELS}" if channels else ""))
    if shape[1] * shape[2] * DOWNSCALE**2 > MAX_IMAGE_PIXELS:
        raise AutoencError(f"{what}: latent would decode to {shape[2] * DOWNSCALE}x{shape[1] * DOWNSCALE} pixels, "
                           f"over the {MAX_IMAGE_PIXELS:,}-pixel limit")


def latent_array(latent, channels: int):
    """A C x h x w float latent array -> float32, C-contiguous, finite. An int8 array is refused: its values need
    the per-channel scales of its sidecar (decode_file reads both)."""
    import numpy as np
    if not isinstance(latent, np.ndarray):
        raise TypeError(f"a latent: give a C x h x w float array or an N x C x h x w tensor, not {type(latent).__name__}"
                        + (" (for a .npy file, use decode_file)" if isinstance(latent, (str, os.PathLike)) else ""))
    if latent.dtype == np.int8:
        raise AutoencError("an int8 latent array: its values are stored without their per-channel scales; "
                           "decode the file with decode_file, or give the float values")
    if latent.dtype.kind != "f":
        raise AutoencError(f"a latent array of {latent.dtype}: give float values")
    check_latent_shape(latent.shape, channels)
    with np.errstate(over="ignore"):  # float64 past float32's range becomes inf, refused below
        values = np.ascontiguousarray(latent, dtype=np.float32)
    if not np.isfinite(values).all():
        raise AutoencError("a latent array with NaN or inf values (or past float32's range)")
    return values


def latent_batch(latent, channels: int):
    """An N x C x h x w float latent tensor, finite. Returned as given."""
    import torch
    if latent.ndim != 4 or latent.shape[0] == 0:
        raise AutoencError(f"a latent tensor of shape {tuple(latent.shape)}: give N x {channels} x h x w")
    check_latent_shape(tuple(latent.shape[1:]), channels)
    if not latent.is_floating_point():
        raise AutoencError(f"a latent tensor of {latent.dtype}: give float values")
    if not torch.isfinite(latent.float()).all():
        raise AutoencError("a latent tensor with NaN or inf values (or past float32's range)")
    return latent
