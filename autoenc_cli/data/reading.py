"""Reading pictures: one way to open an image file (regular files only, fully decoded, as 8-bit RGB), and the
worker processes that decode many at once. Everything that reads a picture (the codec, training's caches, eval,
score) goes through here.
"""

import ctypes
import os
import signal
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import open_regular
from autoenc_cli.model.autoencoder import IMAGE_SIZE

MAX_IMAGE_PIXELS = 64_000_000  # larger pictures are refused: a decompression bomb's header, or far past any memory
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
EXIF_ORIENTATION = 0x0112  # values 5 to 8 turn the picture a quarter: its sides swap

# ---------------------------------------------------------------- decoding one image

def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode (L, P, RGBA, LA, I;16, CMYK, ...) -> 8-bit RGB. Transparency goes over white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        scale = 255.0 / 65535.0 if img.mode.startswith("I") and a.max() > 255 else 1.0
        img = Image.fromarray(np.clip(a * scale + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" or img.mode in ("LA", "PA", "RGBa", "La") or "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return img.convert("RGB")


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image as RGB, or raise AutoencError naming the file and problem."""
    with open_regular(path) as f:  # a FIFO named x.png would block, a device never end: refused before reading
        if os.fstat(f.fileno()).st_size == 0:
            raise AutoencError(f"{path}: empty file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow's notes on files it reads anyway (odd EXIF, MPO, ...) are noise here
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f) as img:
                    img.load()
                    return to_rgb(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise AutoencError(f"{path}: image too large (over {MAX_IMAGE_PIXELS:,} pixels; possible decompression bomb)") from None
        except Image.UnidentifiedImageError:
            raise AutoencError(f"{path}: not an image Pillow can read") from None
        except Exception as e:  # any decoder's failure on a damaged file (OSError, SyntaxError, struct.error, ...)  # noqa: BLE001
            raise AutoencError(f"{path}: cannot decode image ({e or type(e).__name__})") from None


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) as the picture is shown (EXIF orientation applied, as open_image does) from its header, or
    None when it cannot be read (open_image says why)."""
    try:
        with open_regular(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(f) as img:
                w, h = img.size
                return (h, w) if img.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8) else (w, h)
    except Exception:  # AutoencError or any decoder failure: the caller decodes (and counts) it later  # noqa: BLE001
        return None


def center_square(img: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Centre-crop to a square and resize to size x size (no-op for images already that size)."""
    w, h = img.size
    if (w, h) == (size, size):
        return img
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))  # crop first: no bleed from outside the square
    return img.resize((size, size), Image.BICUBIC, reducing_gap=3.0)


def load_square(path: str | os.PathLike, size: int = IMAGE_SIZE) -> np.ndarray:
    """A file as a size x size x 3 uint8 array."""
    return np.asarray(center_square(open_image(path), size), dtype=np.uint8)


def decode_or_none(path: Path) -> np.ndarray | None:
    try:
        return load_square(path)
    except Exception:  # AutoencError or any decoder failure: a broken file never stops a whole dataset  # noqa: BLE001
        return None


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes that decode pictures, and that end when the process that started them is killed: a SIGKILL (a
    torchrun restart, the OOM killer) would otherwise leave them waiting for work forever (seen: two orphans per
    rank 0 killed while it built the cache)."""
    return ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),))


def die_with_parent(parent: int) -> None:
    try:  # Linux: prctl(PR_SET_PDEATHSIG, SIGKILL); elsewhere the pool is only shut down by a living parent
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)
