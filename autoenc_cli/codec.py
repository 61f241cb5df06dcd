"""Images and latent files in and out: encode pictures to latents, decode latents to pictures.

A latent file is a plain float32 `.npy` of shape (channels, height/16, width/16) -- channel
first, as the network computes it: (128, 4, 4) for a 64x64 image at width 1.
`numpy.load(path, allow_pickle=False)` reads it.
"""

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import load_square
from .errors import AutoencError
from .fileio import atomic_path, write_bytes_atomic
from .model import IMAGE_SIZE, Autoencoder, decode_pixels, encode_pixels


def save_png(pixels: np.ndarray, path: str | os.PathLike) -> None:
    """H x W x 3 uint8 -> PNG, written atomically."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())


def save_latent(latent: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(latent, dtype=np.float32), allow_pickle=False)


def load_latent(path: str | os.PathLike, channels: int) -> np.ndarray:
    """Read and check a latent `.npy` without ever unpickling: (channels, h, w), finite numbers."""
    path = Path(path)
    if not path.is_file():
        raise AutoencError(f"{path}: no such latent file")
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise AutoencError(f"{path}: latent has an object dtype (refused: it would need unpickling)") from None
        raise AutoencError(f"{path}: not a .npy latent file ({e})") from None
    except (OSError, EOFError) as e:
        raise AutoencError(f"{path}: not a .npy latent file ({e})") from None
    if not isinstance(z, np.ndarray) or z.dtype.kind not in "fiu":
        raise AutoencError(f"{path}: latent dtype {getattr(z, 'dtype', type(z))} is not numeric")
    if z.ndim == 4 and z.shape[0] == 1:
        z = z[0]
    if z.ndim != 3 or z.shape[0] != channels or z.shape[1] < 1 or z.shape[2] < 1:
        raise AutoencError(f"{path}: latent shape {z.shape}, expected ({channels}, H, W) such as ({channels}, 4, 4)")
    z = z.astype(np.float32)
    if not np.isfinite(z).all():
        raise AutoencError(f"{path}: latent contains NaN or inf")
    return z


@torch.inference_mode()
def encode_images(model: Autoencoder, pixels: np.ndarray) -> np.ndarray:
    """N x H x W x 3 uint8 -> N x C x H/16 x W/16 float32 latents."""
    x = encode_pixels(torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(0, 3, 1, 2))
    return model.encoder(x).float().numpy()


@torch.inference_mode()
def decode_latents(model: Autoencoder, latents: np.ndarray) -> np.ndarray:
    """N x C x h x w float32 latents -> N x 16h x 16w x 3 uint8 pixels."""
    y = model.decoder(torch.from_numpy(np.array(latents, dtype=np.float32)))
    return decode_pixels(y).permute(0, 2, 3, 1).numpy()


def encode_file(model: Autoencoder, image_path, latent_path) -> tuple[int, ...]:
    pixels = load_square(image_path, IMAGE_SIZE)
    latent = encode_images(model, pixels[None])[0]
    save_latent(latent, latent_path)
    return latent.shape


def decode_file(model: Autoencoder, latent_path, image_path) -> tuple[int, int]:
    latent = load_latent(latent_path, model.encoder[-2].out_channels)
    pixels = decode_latents(model, latent[None])[0]
    save_png(pixels, image_path)
    return pixels.shape[1], pixels.shape[0]


def comparison_grid(originals: np.ndarray, reconstructions: np.ndarray, columns: int = 8, scale: int = 2) -> np.ndarray:
    """Rows of originals, each followed by the row of their reconstructions, 1px gaps, upscaled."""
    n, h, w, _ = originals.shape
    rows = -(-n // columns)
    grid = np.full((rows * 2 * (h + 1) + 1, columns * (w + 1) + 1, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = r * 2 * (h + 1) + 1, c * (w + 1) + 1
        grid[y:y + h, x:x + w] = originals[i]
        grid[y + h + 1:y + 2 * h + 1, x:x + w] = reconstructions[i]
    return grid.repeat(scale, 0).repeat(scale, 1)
