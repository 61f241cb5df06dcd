"""The Python API: load weights, encode and decode pictures, train. `autoenc encode` and `decode` run through it, so
Python and the shell give the same bytes (tests/test_api.py).

Pictures come in three kinds, and each function gives back the kind it was given:
- a PIL image (any mode: converted to 8-bit RGB, as `autoenc encode` reads files);
- a uint8 numpy array, H x W x 3 (RGB);
- a float tensor, N x 3 x H x W, RGB in [0, 1] (H and W multiples of 16), on any device: one batched pass.
Latents are float32, 128 channels (x the channel multiplier) at 1/16 of the picture's side: a numpy array C x h x w
for one picture, a tensor N x C x h x w for a batch. A PIL image or array of any size goes through in exact tiles
that fit `max_memory` MB, with the result that one pass would give.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Union

import numpy as np
import torch
from PIL import Image

from autoenc_cli.codec.encoding import decode_file, encode_file, encode_picture, reconstruct_picture
from autoenc_cli.codec.pictures import to_rgb
from autoenc_cli.codec.tiles import decode_tiled
from autoenc_cli.errors import AutoencError  # noqa: F401 (public: autoenc_cli.AutoencError)
from autoenc_cli.model.autoencoder import DOWNSCALE, Autoencoder, encode_pixels
from autoenc_cli.model.color import lab_units_to_rgb_units, rgb_units_to_lab_units
from autoenc_cli.model.hardware import autocast, pick_precision
from autoenc_cli.model.weights import fingerprint, load_model, resolve_weights
from autoenc_cli.training.config import TrainConfig
from autoenc_cli.training.train import Result
from autoenc_cli.training.train import train as run_training

Picture = Union[Image.Image, np.ndarray, torch.Tensor]
log = logging.getLogger("autoenc")


@dataclass
class Codec:
    """Trained weights, ready to encode and decode. Made by load()."""
    module: Autoencoder  # the plain torch.nn.Module, in eval mode
    metadata: dict  # the weights file's metadata (config, provenance)
    path: Path  # the weights file
    max_memory: float | None = None  # MB for one picture's pass; None: 1,024 on a CPU, half the free memory on a GPU
    precision: str = "fp32"  # or bf16, where the hardware runs it natively (docs/benchmarks.md: its cost)
    _fingerprint: dict | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        """The torch device the network runs on."""
        return next(self.module.parameters()).device

    @property
    def latent_channels(self) -> int:
        """Channels of a latent: 128 x the weights' channel multiplier."""
        return self.module.latent_channels

    @property
    def fingerprint(self) -> dict:
        """The weights' file name and sha256, as latent sidecars record them."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.path)
        return self._fingerprint

    def encode(self, picture: Picture) -> np.ndarray | torch.Tensor:
        """A picture -> its latent: C x ceil(H/16) x ceil(W/16) float32 array (a PIL image or uint8 array, padded by
        mirroring to multiples of 16), or N x C x H/16 x W/16 tensor (a float tensor batch)."""
        if isinstance(picture, torch.Tensor):
            with torch.inference_mode(), autocast(self.device, self.precision):
                return self.module.encoder(self._network_input(picture)).float()
        return encode_picture(self.module, rgb_array(picture), self.max_memory, self.precision)

    def decode(self, latent: np.ndarray | torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image | torch.Tensor:
        """A latent -> its picture: a PIL image from a C x h x w array (16h x 16w, or cropped to size = (width,
        height)), or an N x 3 x 16h x 16w float tensor in [0, 1] from an N x C x h x w tensor."""
        if isinstance(latent, torch.Tensor):
            with torch.inference_mode(), autocast(self.device, self.precision):
                units = self.module.decoder(latent.to(self.device, torch.float32))
            return self._pixels_out(units.float())
        values = np.asarray(latent, dtype=np.float32)
        if values.ndim != 3 or values.shape[0] != self.latent_channels:
            raise AutoencError(f"a latent of shape {values.shape}; these weights decode ({self.latent_channels}, h, w)")
        pixels = decode_tiled(self.module, torch.from_numpy(values)[None], self.max_memory, self.precision)
        w, h = size or (pixels.shape[1], pixels.shape[0])
        return Image.fromarray(pixels[:h, :w])

    def reconstruct(self, picture: Picture) -> Picture:
        """encode then decode, giving back the kind and size of picture it was given."""
        if isinstance(picture, torch.Tensor):
            return self.decode(self.encode(picture))
        out = reconstruct_picture(self.module, rgb_array(picture), self.max_memory, self.precision)
        return Image.fromarray(out) if isinstance(picture, Image.Image) else out

    def encode_file(self, image: str | os.PathLike, latent: str | os.PathLike, dtype: str = "float32",
                    resize: int | None = None) -> tuple[tuple[int, ...], tuple[int, int]]:
        """An image file -> a latent .npy and its JSON sidecar, as `autoenc encode` writes them (dtype float32, float16
        or int8; resize: centre-crop and resize to resize x resize first). Returns the latent's shape and the
        picture's (width, height)."""
        return encode_file(self.module, image, latent, dtype, resize, self.fingerprint, self.max_memory, self.precision)

    def decode_file(self, latent: str | os.PathLike, image: str | os.PathLike) -> tuple[tuple[int, int], str | None]:
        """A latent .npy (with its sidecar) -> a PNG of the size it was encoded from, as `autoenc decode` writes it.
        Returns the picture's (width, height), and a warning when the latent names other weights (else None)."""
        return decode_file(self.module, latent, image, self.max_memory, self.fingerprint, self.precision)

    def _network_input(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.ndim != 4 or batch.shape[1] != 3 or batch.shape[2] % DOWNSCALE or batch.shape[3] % DOWNSCALE:
            raise AutoencError(f"a tensor of shape {tuple(batch.shape)}: give N x 3 x H x W, H and W multiples of 16")
        units = encode_pixels(batch.to(self.device, torch.float32) * 255)  # [0, 1] -> bytes' scale -> v/64 - 2
        return units if self.module.color == "rgb" else rgb_units_to_lab_units(units)

    def _pixels_out(self, units: torch.Tensor) -> torch.Tensor:
        rgb = units if self.module.color == "rgb" else lab_units_to_rgb_units(units)
        return ((rgb + 2) * (64 / 255)).clamp(0, 1)


def rgb_array(picture: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image (any mode) or an H x W x 3 uint8 array -> H x W x 3 uint8 RGB, as files are read."""
    if isinstance(picture, Image.Image):
        return np.asarray(to_rgb(picture), dtype=np.uint8)
    array = np.asarray(picture)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise AutoencError(f"an array of {array.dtype} {array.shape}: give H x W x 3 uint8 RGB (or a PIL image, or "
                           "an N x 3 x H x W float tensor in [0, 1])")
    return array


def load(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
         max_memory: float | None = None, precision: str = "fp32") -> Codec:
    """Load weights made by `autoenc train` (None: the bundled ones) onto a device ("cpu", "cuda", ...).
    precision: fp32, bf16, or auto (bf16 where the hardware runs it natively)."""
    path = resolve_weights(weights)
    module, metadata = load_model(path, device)
    return Codec(module.eval(), metadata, path, max_memory, pick_precision(precision, torch.device(device)))


@dataclass
class TrainingProgress:
    """What train()'s progress callback is given: the phase ("training", or the cache being built), how far it is,
    and while training the last logged mean loss (nan before the first) and the epoch."""
    phase: str
    done: int
    total: int
    loss: float = float("nan")
    epoch: int = 0


class CallbackProgress:
    """The training loop's progress hooks, turned into calls of one function."""

    def __init__(self, callback: Callable[[TrainingProgress], None]):
        self.callback = callback
        self.rate = 0.0  # images/s of the last log window, set by the loop

    def cache_progress(self, done: int, total: int, label: str) -> None:
        self.callback(TrainingProgress(label, done, total))

    def start(self, total: int, step: int):
        return lambda step, loss, epoch: self.callback(TrainingProgress("training", step, total, loss, epoch))

    def stop(self, keep: bool = True) -> None:
        pass


def train(data: str | os.PathLike, out: str | os.PathLike = "runs/autoenc", *, resume: bool = False,
          download: bool = False, progress: Callable[[TrainingProgress], None] | None = None, **settings) -> Result:
    """Train (or with resume=True continue) a run, as `autoenc train DATA --out OUT` does: writes
    OUT/model.safetensors, log.csv, samples/ and the state. download=True: when DATA is missing, fetch Tiny
    ImageNet there first (as --download). settings: any of `autoenc train`'s options, with underscores
    (max_steps=2000, batch_size=64, lr=1e-3, init="default", ...). Messages go to the "autoenc" logger.
    Returns the last step, validation loss and PSNR, the weights' path and the log's rows."""
    known = {f.name for f in fields(TrainConfig)} - {"data", "out"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"train() got unknown settings {unknown}; known: {sorted(known)}")
    if download and not Path(data).exists():
        from autoenc_cli.training.download import download_dataset
        download_dataset(data, say=lambda text: log.info(plain(text)))
    cfg = TrainConfig(data=str(data), out=str(out), **settings)
    return run_training(cfg, resume=resume, say=lambda text: log.info(plain(text)), named=set(settings),
                        progress_factory=(lambda: CallbackProgress(progress)) if progress else None)


def plain(markup: str) -> str:
    """A message written for the terminal, without its rich markup."""
    from rich.text import Text
    return Text.from_markup(markup).plain
