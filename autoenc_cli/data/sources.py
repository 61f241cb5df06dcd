"""Where training batches come from: 64x64 thumbnails as they are, or random windows of photographs.

Data order: each epoch draws one permutation (or set of windows) and one set of flips from a generator
seeded by (seed, epoch). Global batch b of an epoch is the slice [b*B*W, (b+1)*B*W) of those draws
(B per process, W processes), and rank r takes its r-th part: so W processes at batch B see exactly
the images of one process at batch B*W, and a resumed run sees exactly what the uninterrupted run would have.

`cfg` is training's TrainConfig (training/config.py), read for its data settings only; data/ sits below training and
never imports it.
"""

import os

import numpy as np
import torch
import torch.distributed as dist

from autoenc_cli.data.cache import cached_images
from autoenc_cli.data.pyramids import Photos, cached_photos
from autoenc_cli.data.splits import all_thumbnails, class_fraction, split_dataset
from autoenc_cli.data.windows import WindowDraws, draw_windows, fixed_windows, window_batch
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.model.color import to_network

VAL_WINDOWS_PER_PHOTO = 8  # fixed windows cut from each validation photo


def epoch_order(seed: int, epoch: int, n: int, global_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This epoch's image order (at least one global batch long) and per-position flips."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(-(-global_batch // n))])
    flips = torch.rand(len(order), generator=g) < 0.5
    return order, flips


def make_batch(pixels, order, flips, start: int, size: int, device, color: str = "rgb") -> torch.Tensor:
    """uint8 N x 64 x 64 x 3 rows -> a float channels_last batch in the network's encoding."""
    idx, flip = order[start:start + size], flips[start:start + size]
    if isinstance(pixels, torch.Tensor):  # the whole dataset already lives on the device
        x = pixels[idx.to(pixels.device)]
    else:
        x = torch.from_numpy(pixels[idx.numpy()]).to(device, non_blocking=True)
    flip = flip.to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(2), x)
    return to_network(x.permute(0, 3, 1, 2), color)  # NHWC storage == NCHW channels_last


class Thumbnails:
    """64x64 pictures (Tiny ImageNet, a folder of thumbnails): each epoch is one permutation of them."""

    def __init__(self, pixels):
        self.pixels = pixels

    def __len__(self) -> int:
        return len(self.pixels)

    def nbytes(self) -> int:
        return self.pixels.nbytes

    def to(self, device: torch.device) -> None:
        self.pixels = torch.from_numpy(np.array(self.pixels)).to(device)

    def epoch(self, seed: int, epoch: int, global_batch: int):
        return epoch_order(seed, epoch, len(self.pixels), global_batch)

    def batch(self, draws, start: int, size: int, device, color: str) -> torch.Tensor:
        order, flips = draws
        return make_batch(self.pixels, order, flips, start, size, device, color)


class Windows:
    """Photographs of any size: each epoch draws cfg.windows_per_photo random windows from each (windows.py)."""

    def __init__(self, photos: Photos, cfg):
        self.photos, self.cfg = photos, cfg

    def __len__(self) -> int:
        return len(self.photos) * self.cfg.windows_per_photo

    def nbytes(self) -> int:
        return self.photos.flat.nbytes

    def to(self, device: torch.device) -> None:
        self.photos.to(device)  # windows are then cut on the device, a batch at once

    def epoch(self, seed: int, epoch: int, global_batch: int) -> WindowDraws:
        draws = draw_windows(seed, epoch, len(self.photos), max(len(self), global_batch))
        return draws.to(self.photos.table.device)  # on the GPU with the pixels: no copy from the host per batch

    def batch(self, draws: WindowDraws, start: int, size: int, device, color: str) -> torch.Tensor:
        x = window_batch(self.photos, draws, start, size, self.cfg.max_zoom, self.cfg.rotate,
                         self.cfg.shuffle_channels).to(device, non_blocking=True)
        return to_network(x.permute(0, 3, 1, 2), color)


PHOTO_OPTIONS = ("windows_per_photo", "max_zoom", "rotate", "shuffle_channels")  # read only for photos beyond 64x64


def load_data(cfg, say, progress, named: set[str] = frozenset()):
    """(split, training source, validation pixels): thumbnails as they are, or windows of photographs. named: the
    options the user gave; one that only shapes photo windows is refused on 64x64 pictures, before any decoding."""
    split = split_dataset(cfg.data)
    files = class_fraction(split.train, cfg.fraction, cfg.seed, split.layout)
    photos = split.layout == "folder" and not all_thumbnails(files)
    unused = [f"--{n.replace('_', '-')}" for n in PHOTO_OPTIONS if n in named]
    if unused and not photos:  # every process takes this decision, before the barrier below
        raise AutoencError(f"{cfg.data}: 64x64 pictures, taken as they are; {', '.join(unused)} only shape windows of "
                           "larger photos")
    first_here = int(os.environ.get("LOCAL_RANK", "0")) == 0
    if dist.is_initialized() and not first_here:
        dist.barrier()  # one process per machine decodes the dataset into the cache, then the others read it
    if photos:
        source, val_pixels, skipped = load_photos(files, split.val, cfg, progress)
    else:
        source, val_pixels, skipped = load_thumbnails(files, split.val, cfg, progress)
    if skipped:
        say(f"[yellow]warning:[/] skipped {counted(skipped, 'unreadable image file')} in {cfg.data}")
    if dist.is_initialized() and first_here:
        dist.barrier()
    return split, source, val_pixels


def load_thumbnails(files, val_files, cfg, progress):
    train = cached_images(files, cfg.cache_dir, progress, "decoding train images")
    val = cached_images(val_files, cfg.cache_dir, progress, "decoding val images") if val_files else None
    if len(train.pixels) == 0:
        raise AutoencError(f"{cfg.data}: none of the {len(files)} training image files could be read")
    if val is None or len(val.pixels) == 0:
        val_pixels = train.pixels[-min(len(train.pixels), 256):]
    else:
        val_pixels = val.pixels
    return Thumbnails(train.pixels), val_pixels, train.skipped + (val.skipped if val else 0)


def load_photos(files, val_files, cfg, progress):
    train = cached_photos(files, cfg.cache_dir, progress, "decoding train photos")
    val = cached_photos(val_files, cfg.cache_dir, progress, "decoding val photos") if val_files else None
    if len(train) == 0:
        raise AutoencError(f"{cfg.data}: none of the {len(files)} training image files could be read")
    val_pixels = fixed_windows(val if val is not None and len(val) else train, VAL_WINDOWS_PER_PHOTO, cfg.max_zoom)
    return Windows(train, cfg), val_pixels, train.skipped + (val.skipped if val else 0)
