"""Reading pictures: one way to open an image file (regular files only, fully decoded, as 8-bit RGB), one walk of
folders that finds them, and the worker processes that decode many at once. Everything that reads a picture (the
codec, training's cache, eval, score) goes through here.
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
from autoenc_cli.model.autoencoder import IMAGE_SIZE

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"}
MAX_IMAGE_PIXELS = 64_000_000  # larger headers are refused (decompression bombs)

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

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
    path = Path(path)
    if not path.exists():
        raise AutoencError(f"{path}: no such file")
    if path.is_dir():
        raise AutoencError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise AutoencError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on files it reads anyway (odd EXIF, MPO, ...) are noise here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return to_rgb(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise AutoencError(f"{path}: image too large (over {MAX_IMAGE_PIXELS:,} pixels; possible decompression bomb)") from None
    except Image.UnidentifiedImageError:
        raise AutoencError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise AutoencError(f"{path}: cannot decode image ({e})") from None


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


# ---------------------------------------------------------------- finding images

def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, extensions matched case-insensitively, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames if is_image_file(Path(f))]
    return sorted(found)


def image_files(inputs: list[Path]) -> list[Path]:
    """Files as given and the image files found in folders, in that order; an error when one is missing or none is found."""
    for p in inputs:
        if not p.exists():
            raise AutoencError(f"{p}: no such file or folder")
    files = [f for p in inputs for f in (find_images(p) if p.is_dir() else [p])]
    if not files:
        raise AutoencError(f"no image files ({', '.join(str(p) for p in inputs)}); extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return files


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
