"""The Python API: load weights, encode and decode pictures, train. `autoenc encode` and `decode` run through it, so
Python and the shell give the same bytes (tests/test_api.py).

Pictures come in three kinds, and each function gives back the kind it was given:
- a PIL image (any mode: converted to 8-bit RGB, as `autoenc encode` reads files);
- a uint8 numpy array, H x W x 3 (RGB), of any strides;
- a tensor, N x 3 x H x W (H and W multiples of 16), uint8 bytes or float RGB in [0, 1], on any device: one pass.
Latents are float32, 128 channels (x the channel multiplier) at 1/16 of the picture's side: a numpy array C x h x w
for one picture, a tensor N x C x h x w for a batch. A PIL image or array of any size goes through in exact tiles
that fit `max_memory` MB, with the result that one pass would give.

What goes in passes the codec's gate (codec/inputs.py), the one the command line's commands pass: a refusal is an
AutoencError (a value) or a TypeError (an argument of the wrong kind), in one line that names the problem.
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
from autoenc_cli.codec.budget import check_steps
from autoenc_cli.codec.refine import refine as refine_latents
from autoenc_cli.codec.inputs import (check_max_memory, crop_size, latent_array, latent_batch, path_argument,
                                      picture_array, picture_batch)
from autoenc_cli.codec.tiles import decode_tiled
from autoenc_cli.errors import AutoencError  # noqa: F401 (public: autoenc_cli.AutoencError)
from autoenc_cli.model.autoencoder import DOWNSCALE, Autoencoder, encode_pixels
from autoenc_cli.model.color import from_network, lab_units_to_rgb_units, rgb_units_to_lab_units, to_network
from autoenc_cli.model.hardware import autocast, pick_device, pick_precision
from autoenc_cli.model.weights import fingerprint, load_model, resolve_weights
from autoenc_cli.training.config import TrainConfig, typed_settings
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
    def _budget(self) -> float | None:
        """max_memory, checked where it is used: it may be set after load()."""
        return check_max_memory(self.max_memory)

    @property
    def fingerprint(self) -> dict:
        """The weights' file name and sha256, as latent sidecars record them."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.path)
        return self._fingerprint

    def encode(self, picture: Picture, refine: int = 0) -> np.ndarray | torch.Tensor:
        """A picture -> its latent: C x ceil(H/16) x ceil(W/16) float32 array (a PIL image or uint8 array, padded by
        mirroring to multiples of 16), or N x C x H/16 x W/16 tensor (a tensor batch). refine: steps of
        refinement against the decoder after the encoder's pass (docs/refine.md; 0: the one pass)."""
        refine = check_steps(refine, "refine")
        if isinstance(picture, torch.Tensor):
            units = self._network_input(picture)
            with torch.inference_mode(), autocast(self.device, self.precision):
                latent = self.module.encoder(units).float()
            return refine_latents(self.module, units, latent, refine, max_memory_mb=self._budget,
                                  precision=self.precision) if refine else latent
        return encode_picture(self.module, picture_array(picture), self._budget, self.precision, refine)

    def decode(self, latent: np.ndarray | torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image | torch.Tensor:
        """A latent -> its picture: a PIL image from a C x h x w float array (16h x 16w, or cropped to size = (width,
        height)), or an N x 3 x 16h x 16w float tensor in [0, 1] from an N x C x h x w tensor (cropped alike)."""
        if isinstance(latent, torch.Tensor):
            crop = crop_size(size, tuple(latent_batch(latent, self.latent_channels).shape))
            pictures = self._pixels_out(self._decoded_units(latent))
            return pictures if crop is None else pictures[..., :crop[1], :crop[0]]
        values = latent_array(latent, self.latent_channels)
        w, h = crop_size(size, values.shape) or (values.shape[2] * DOWNSCALE, values.shape[1] * DOWNSCALE)
        pixels = decode_tiled(self.module, torch.from_numpy(values)[None], self._budget, self.precision)
        return Image.fromarray(pixels[:h, :w])

    def reconstruct(self, picture: Picture, refine: int = 0) -> Picture:
        """encode (with `refine` steps of refinement) then decode, giving back the kind and size of picture it was
        given (a uint8 tensor: uint8)."""
        if isinstance(picture, torch.Tensor):
            latent = self.encode(picture, refine)
            if picture.dtype == torch.uint8:  # bytes back, rounded as the files' path rounds them
                return from_network(self._decoded_units(latent), self.module.color)
            return self.decode(latent)
        out = reconstruct_picture(self.module, picture_array(picture), self._budget, self.precision, check_steps(refine, "refine"))
        return Image.fromarray(out) if isinstance(picture, Image.Image) else out

    def encode_file(self, image: str | os.PathLike, latent: str | os.PathLike, dtype: str = "float32",
                    resize: int | None = None, refine: int = 0,
                    progress: Callable[[int, int], None] | None = None) -> tuple[tuple[int, ...], tuple[int, int]]:
        """An image file -> a latent (named .npy) and its JSON sidecar, as `autoenc encode` writes them (dtype float32, float16
        or int8; resize: centre-crop and resize to resize x resize first; refine: steps of refinement, recorded in
        the sidecar, progress(0, total) before the first step and (done, total) after each). Returns the latent's shape and the picture's (width, height)."""
        return encode_file(self.module, image, latent, dtype, resize, self.fingerprint, self._budget, self.precision,
                           refine, progress)

    def decode_file(self, latent: str | os.PathLike, image: str | os.PathLike) -> tuple[tuple[int, int], str | None]:
        """A latent .npy (with its sidecar) -> a picture of the size it was encoded from, as `autoenc decode` writes
        it, in the format the image name's suffix says: PNG, JPEG (.jpg, .jpeg; quality 95), WebP (.webp; quality 95)
        or TIFF (.tif, .tiff). Returns the picture's (width, height), and a warning when the latent names other
        weights (else None)."""
        return decode_file(self.module, latent, image, self._budget, self.fingerprint, self.precision)

    def _network_input(self, batch: torch.Tensor) -> torch.Tensor:
        batch = picture_batch(batch).to(self.device)
        if batch.dtype == torch.uint8:  # bytes, as a file's pixels go in
            return to_network(batch, self.module.color)
        units = encode_pixels(batch.float() * 255)  # [0, 1] -> bytes' scale -> v/64 - 2
        return units if self.module.color == "rgb" else rgb_units_to_lab_units(units)

    def _decoded_units(self, latent: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.module.decoder(latent.to(self.device, torch.float32)).float()

    def _pixels_out(self, units: torch.Tensor) -> torch.Tensor:
        rgb = units if self.module.color == "rgb" else lab_units_to_rgb_units(units)
        return ((rgb + 2) * (64 / 255)).clamp(0, 1)


def load(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
         max_memory: float | None = None, precision: str = "fp32") -> Codec:
    """Load weights made by `autoenc train` (None: the bundled ones) onto a device ("cpu", "cuda", "cuda:1", "mps",
    "auto" or a torch.device). precision: fp32, bf16, or auto (bf16 where the hardware runs it natively)."""
    path = resolve_weights(None if weights is None else path_argument(weights, "weights"))
    device, max_memory = pick_device(device, "device"), check_max_memory(max_memory)  # refused before the weights are read
    module, metadata = load_model(path, device)
    return Codec(module.eval(), metadata, path, max_memory, pick_precision(precision, device, option="precision"))


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
    data, out = path_argument(data, "data"), path_argument(out, "out")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: give a function of one TrainingProgress (or None), not {type(progress).__name__}")
    cfg = TrainConfig(data=str(data), out=str(out), **typed_settings(settings))
    cfg.check(python=True)  # every setting's range, before a download or a cache is built; named as train()'s arguments
    if download and not data.exists():
        from autoenc_cli.training.download import download_dataset
        download_dataset(data, say=lambda text: log.info(plain(text)))
    return run_training(cfg, resume=resume, say=lambda text: log.info(plain(text)), named=set(settings),
                        progress_factory=(lambda: CallbackProgress(progress)) if progress else None)


def plain(markup: str) -> str:
    """A message written for the terminal, without its rich markup."""
    from rich.text import Text
    return Text.from_markup(markup).plain
