"""Images and latent files in and out: encode pictures to latents, decode latents to pictures.

Pictures keep their own size: the network is fully convolutional, so a picture is padded on the
right and bottom to a multiple of 16, encoded, and decoded pictures are cropped back. A latent is
(channels, ceil(height/16), ceil(width/16)), channel first: (128, 4, 4) for 64x64 at channel multiplier 1.
The file format (a .npy and a JSON sidecar) is in latentfile.py.
"""

import io
import numbers
import os
import warnings

import numpy as np
import torch
from PIL import Image

from autoenc_cli.model.color import from_network, to_network
from autoenc_cli.data.reading import center_square, open_image
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import write_bytes_atomic
from autoenc_cli.model.hardware import autocast
from autoenc_cli.codec.inputs import (LATENT_FILE, LATENT_SUFFIX, check_inputs, check_pictures_given, named_as, path_argument,
                                      picture_format, prepare_outputs)
from autoenc_cli.codec.latentfile import Latent, check_dtype, load_latent, save_latent, sidecar_path
from autoenc_cli.model.autoencoder import DOWNSCALE, Autoencoder
from autoenc_cli.codec.budget import check_steps
from autoenc_cli.codec.refine import Refinement, refine as refine_latents
from autoenc_cli.codec.tiles import decode_tiled, encode_tiled


def save_png(pixels: np.ndarray, path: str | os.PathLike) -> None:
    """H x W x 3 uint8 -> PNG, written atomically."""
    save_picture(pixels, path, ("PNG", {}))


def save_picture(pixels: np.ndarray, path: str | os.PathLike, how: tuple[str, dict]) -> None:
    """H x W x 3 uint8 -> a picture in the format `how` names (picture_format: Pillow's name and save options),
    written atomically."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(buf, format=how[0], **how[1])
    write_bytes_atomic(path, buf.getvalue())


@torch.inference_mode()
def encode_images(model: Autoencoder, pixels: np.ndarray, precision: str = "fp32") -> np.ndarray:
    """N x H x W x 3 uint8 -> N x C x H/16 x W/16 float32 latents (computed on the model's device; `autoenc encode`
    runs fp32, bench also at training's precision)."""
    device = next(model.parameters()).device
    x = to_network(torch.from_numpy(np.array(pixels, dtype=np.uint8)).to(device).permute(0, 3, 1, 2), model.color)
    with autocast(device, precision):
        return model.encoder(x).float().cpu().numpy()


@torch.inference_mode()
def decode_latents(model: Autoencoder, latents: np.ndarray, precision: str = "fp32") -> np.ndarray:
    """N x C x h x w float32 latents -> N x 16h x 16w x 3 uint8 pixels (computed on the model's device)."""
    device = next(model.parameters()).device
    with autocast(device, precision):
        y = model.decoder(torch.from_numpy(np.array(latents, dtype=np.float32)).to(device))
    return from_network(y.float(), model.color).permute(0, 2, 3, 1).cpu().numpy()


def pad_to_multiple(pixels: np.ndarray, m: int = DOWNSCALE) -> np.ndarray:
    """H x W x 3 -> padded on the right and bottom to multiples of m by mirror reflection
    (repeated for pictures smaller than the padding; a 1-pixel side repeats its pixel)."""
    h, w = pixels.shape[:2]
    if h % m == 0 and w % m == 0:
        return pixels  # no copy: a 48-megapixel picture is 144 MB
    return np.pad(pixels, ((0, -h % m), (0, -w % m), (0, 0)), mode="reflect")


def encode_picture(model: Autoencoder, pixels: np.ndarray, max_memory_mb: float | None = None,
                   precision: str = "fp32", refine: int = 0, progress=None) -> np.ndarray:
    """One H x W x 3 uint8 picture of any size -> (C, ceil(H/16), ceil(W/16)) float32 latent, in tiles that
    fit max_memory_mb (None: tiles.budget_mb's default), with the latent one pass would give (tiles.py); then
    `refine` steps of refinement against the decoder (refine.py), progress(done, total) as refine calls it."""
    return picture_latents(model, pixels, max_memory_mb, precision, refine, progress)[-1][0].numpy()


def picture_latents(model: Autoencoder, pixels: np.ndarray, max_memory_mb: float | None, precision: str,
                    refine: int, progress) -> list[torch.Tensor]:
    """encode_picture's latents as 1 x C x h x w tensors: the one pass's, then (refine > 0) the refined one."""
    with warnings.catch_warnings():  # a read-only array (Pillow's) is only read here: no copy of a big picture
        warnings.simplefilter("ignore", UserWarning)
        padded = torch.from_numpy(pad_to_multiple(pixels)).permute(2, 0, 1)[None]
    latent = torch.from_numpy(encode_tiled(model, padded, max_memory_mb, precision))[None]
    if not refine:
        return [latent]
    size = (pixels.shape[1], pixels.shape[0])
    return [latent, refine_latents(model, padded, latent, refine, size, max_memory_mb, precision, progress=progress)]


def decode_picture(model: Autoencoder, latent: Latent, max_memory_mb: float | None = None,
                   precision: str = "fp32") -> np.ndarray:
    """A latent -> its H x W x 3 uint8 picture, cropped to the size it was encoded from (in tiles, as encode)."""
    w, h = latent.original_size
    values = torch.from_numpy(np.asarray(latent.values, dtype=np.float32))[None]
    return decode_tiled(model, values, max_memory_mb, precision)[:h, :w]


@torch.inference_mode()
def run_network(model: Autoencoder, pixels: torch.Tensor, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """The one pass from pixels through the whole network, for eval, the galleries and training's validation:
    N x H x W x 3 uint8 on the model's device -> (the network's input, its output), in the model's colour encoding."""
    x = to_network(pixels.permute(0, 3, 1, 2), model.color)
    with autocast(pixels.device, precision):
        return x, model(x).float()


def reconstruct(model: Autoencoder, pixels: np.ndarray, refine: int = 0, progress=None, precision: str = "fp32") -> np.ndarray:
    """N x H x W x 3 uint8 (H, W multiples of 16) -> the model's reconstructions, as uint8 RGB; with `refine` steps
    of refinement of their latents (refine.py), progress(done, total) as refine calls it."""
    return reconstructions(model, pixels, refine, progress, precision)[-1]


def reconstructions(model: Autoencoder, pixels: np.ndarray, refine: int = 0, progress=None,
                    precision: str = "fp32") -> list[np.ndarray]:
    """reconstruct's pictures: the one pass's, then (refine > 0) the refined latents'. The one-pass latent is
    computed anyway before the refinement: its pictures cost one decode."""
    device = next(model.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(pixels)).to(device)
    if not refine:
        return [as_pixels(model, run_network(model, batch, precision)[1])]
    with torch.inference_mode(), autocast(device, precision):
        latent = model.encoder(to_network(batch.permute(0, 3, 1, 2), model.color)).float()
    refined = refine_latents(model, batch.permute(0, 3, 1, 2), latent, refine, precision=precision, progress=progress)
    out = []
    for z in (latent, refined):
        with torch.inference_mode(), autocast(device, precision):
            out.append(as_pixels(model, model.decoder(z).float()))
    return out


def as_pixels(model: Autoencoder, y: torch.Tensor) -> np.ndarray:
    """The network's N x 3 x H x W output -> N x H x W x 3 uint8 RGB."""
    return from_network(y, model.color).permute(0, 2, 3, 1).cpu().numpy()


def reconstruct_picture(model: Autoencoder, pixels: np.ndarray, max_memory_mb: float | None = None,
                        precision: str = "fp32", refine: int = 0, progress=None) -> np.ndarray:
    """One H x W x 3 uint8 picture of any size, encoded and decoded as `autoenc encode` + `decode` do it."""
    h, w = pixels.shape[:2]
    latent = picture_latents(model, pixels, max_memory_mb, precision, refine, progress)[-1]
    return decode_tiled(model, latent, max_memory_mb, precision)[:h, :w]


def picture_reconstructions(model: Autoencoder, pixels: np.ndarray, max_memory_mb: float | None = None,
                            precision: str = "fp32", refine: int = 0, progress=None) -> list[np.ndarray]:
    """reconstruct_picture's picture, preceded (refine > 0) by the one pass's: one decode more."""
    h, w = pixels.shape[:2]
    return [decode_tiled(model, z, max_memory_mb, precision)[:h, :w]
            for z in picture_latents(model, pixels, max_memory_mb, precision, refine, progress)]


def check_resize(resize: int | None, option: str = "--resize") -> None:
    """--resize's value (resize= in Python: `option` names it): None, or a whole number of pixels."""
    if resize is not None and (isinstance(resize, bool) or not isinstance(resize, numbers.Integral)):
        raise TypeError(f"resize: give a whole number of pixels (or None), not {type(resize).__name__}")
    if resize is not None and not 1 <= resize <= 16384:
        raise AutoencError(f"{option} must be between 1 and 16384 (got {resize})")


def read_picture(path, resize: int | None = None) -> np.ndarray:
    """An image file as H x W x 3 uint8: its own size, or centre-cropped and resized to resize x resize."""
    check_resize(resize)
    img = open_image(path)
    return np.asarray(center_square(img, resize) if resize else img, dtype=np.uint8)


def encode_file(model: Autoencoder, image_path, latent_path, dtype: str = "float32", resize: int | None = None,
                weights: dict | None = None, max_memory_mb: float | None = None,
                precision: str = "fp32", refine: int = 0, progress=None) -> tuple[tuple[int, ...], tuple[int, int]]:
    """Encode one image file into a latent .npy and its sidecar; return the latent's shape and the picture's size.
    refine: steps of refinement (refine.py), recorded in the sidecar; progress(done, total) after each.
    Refused before any work: a latent given as the image, an output that is the image itself or is not named .npy,
    a dtype or size it cannot write. Its messages name the Python API's arguments (the command line checks first)."""
    image_path, latent_path = path_argument(image_path, "image"), path_argument(latent_path, "latent")
    check_dtype(dtype)
    check_resize(resize, "resize")
    refine = check_steps(refine, "refine")
    check_pictures_given([image_path], python=True)
    check_inputs([image_path])
    prepare_outputs([image_path], [latent_path, sidecar_path(latent_path)], "latent")
    named_as(latent_path, LATENT_SUFFIX, LATENT_FILE, "latent")
    pixels = read_picture(image_path, resize)
    latent = encode_picture(model, pixels, max_memory_mb, precision, refine, progress)
    size = (pixels.shape[1], pixels.shape[0])
    refined = Refinement(refine, precision=precision).to_json() if refine else None
    save_latent(latent_path, latent, size, dtype, resize, weights, refined)
    return latent.shape, size


def decode_file(model: Autoencoder, latent_path, image_path, max_memory_mb: float | None = None,
                using: dict | None = None, precision: str = "fp32") -> tuple[tuple[int, int], str | None]:
    """Decode one latent file (with its sidecar, if any) into a picture in the format its name's suffix says (PNG,
    JPEG, WebP or TIFF: inputs.PICTURE_FORMATS).

    Returns the picture's (width, height), and a warning when the latent names weights other than `using` (the
    fingerprint of the weights decoding it): the picture will not match. None when they match or are not named.
    Refused before any work: an output that is the latent or its sidecar, or whose suffix names no format here."""
    latent_path, image_path = path_argument(latent_path, "latent"), path_argument(image_path, "image")
    check_inputs([latent_path])
    prepare_outputs([latent_path, sidecar_path(latent_path)], [image_path], "image")
    how = picture_format(image_path, "image")
    latent = load_latent(latent_path, model.latent_channels)
    pixels = decode_picture(model, latent, max_memory_mb, precision)
    save_picture(pixels, image_path, how)
    made_with, warning = latent.meta.get("weights"), None
    if using and isinstance(made_with, dict) and made_with.get("sha256") not in (None, using.get("sha256")):
        warning = (f"{latent_path} was encoded with other weights ({made_with.get('file')}, sha256 "
                   f"{str(made_with.get('sha256'))[:12]}); the picture will not match")
    return (pixels.shape[1], pixels.shape[0]), warning


LABEL_WIDTH = 104  # pixels left of a comparison grid for the row names
PSNR_HEIGHT = 14  # pixels under each row of reconstructions for their PSNR


def comparison_grid(originals: np.ndarray, reconstructions: np.ndarray, columns: int = 8, scale: int = 2) -> np.ndarray:
    """Rows of originals, each followed by the row of their reconstructions, upscaled, with 1px gaps (before
    scaling); the rows are named on the left and each reconstruction's PSNR is written under it."""
    from PIL import ImageDraw, ImageFont

    from autoenc_cli.codec.metrics import psnr_per_image
    n, h, w, _ = originals.shape
    rows = -(-n // columns)
    pair = 2 * (h + 1) * scale + PSNR_HEIGHT  # one row of originals, one of reconstructions, their PSNRs
    canvas = Image.new("RGB", (LABEL_WIDTH + (columns * (w + 1) + 1) * scale, rows * pair + scale), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(11)
    psnr = psnr_per_image(originals, reconstructions).tolist()
    for r in range(rows):
        top = r * pair + scale
        draw.text((4, top + h * scale // 2 - 6), "original", fill="black", font=font)
        draw.text((4, top + (h + 1) * scale + h * scale // 2 - 6), "reconstruction", fill="black", font=font)
    for i in range(n):
        r, c = divmod(i, columns)
        x, y = LABEL_WIDTH + (c * (w + 1) + 1) * scale, r * pair + scale
        for k, tile in enumerate((originals[i], reconstructions[i])):
            big = Image.fromarray(np.ascontiguousarray(tile)).resize((w * scale, h * scale), Image.NEAREST)
            canvas.paste(big, (x, y + k * (h + 1) * scale))
        draw.text((x + 2, y + 2 * (h + 1) * scale - scale + 1), f"{psnr[i]:.1f} dB", fill="black", font=font)
    return np.asarray(canvas)
