"""Where training batches come from: 64x64 thumbnails as they are, or random windows of photographs.

Data order: each epoch draws one permutation (or set of windows) and one set of flips from a generator
seeded by (seed, epoch). Global batch b of an epoch is the slice [b*B*W, (b+1)*B*W) of those draws
(B per process, W processes), and rank r takes its r-th part: so W processes at batch B see exactly
the images of one process at batch B*W, and a resumed run sees exactly what the uninterrupted run would have.

On several machines (torchrun --nnodes M) each machine decodes and caches only its share of the training pictures
(shards.split_evenly: equal picture counts, about equal cache bytes), all of its processes at once
(shards.built_together). The epoch's draws are the same draws over the whole collection, and each machine's
processes take, in order, those whose picture is in their machine's share, as one group of L processes would
(shards.MachineShare); every process takes the same steps per epoch, set by the machine with the fewest pictures.
A resumed run on the same machines draws the same windows. Resumed on another number of machines, the shares
change: each machine builds a cache entry for its new share (entries are keyed by their files) and the windows
differ from those of the uninterrupted run (the same collection, drawn with the same seeds, in another order).
Validation runs on rank 0 alone, so only the machine that runs rank 0 decodes the validation pictures; the others
hold none. On one machine nothing of this applies but the building together: the windows are as above.

`cfg` is training's TrainConfig (training/config.py), read for its data settings only; data/ sits below training and
never imports it.
"""

import numpy as np
import torch
import torch.distributed as dist

from autoenc_cli.data.cache import CachedImages, cached_images
from autoenc_cli.data.pyramids import Photos, cached_photos, stored_pixels
from autoenc_cli.data.reading import image_size
from autoenc_cli.data.shards import MachineShare, built_together, header_sizes, machine_place, machine_share, process_place
from autoenc_cli.data.splits import all_thumbnails, class_fraction, split_dataset
from autoenc_cli.data.windows import WindowDraws, draw_windows, fixed_windows, window_batch
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.model.autoencoder import IMAGE_SIZE
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
    """64x64 pictures (Tiny ImageNet, a folder of thumbnails): each epoch is one permutation of them (on several
    machines, the part of the permutation of the whole collection that falls to the machine's share)."""

    def __init__(self, pixels, share: MachineShare | None = None):
        self.pixels, self.share = pixels, share

    def __len__(self) -> int:
        return self.share.machines * self.share.fewest if self.share else len(self.pixels)

    def nbytes(self) -> int:
        return self.pixels.nbytes

    def to(self, device: torch.device) -> None:
        self.pixels = torch.from_numpy(np.array(self.pixels)).to(device)

    def readers(self, rank: int, world: int) -> tuple[int, int]:
        """(processes reading this source's draws, this one among them): the job's, or its machine's."""
        return (self.share.readers, self.share.reader) if self.share else (world, rank)

    def epoch(self, seed: int, epoch: int, global_batch: int):
        if self.share is None:
            return epoch_order(seed, epoch, len(self.pixels), global_batch)
        n = self.share.collection
        order, flips = epoch_order(seed, epoch, n, n * self.share.repeats(1, global_batch))
        positions, local = self.share.take(order)
        return local, flips[positions]

    def batch(self, draws, start: int, size: int, device, color: str) -> torch.Tensor:
        order, flips = draws
        return make_batch(self.pixels, order, flips, start, size, device, color)


class Windows:
    """Photographs of any size: each epoch draws cfg.windows_per_photo random windows from each (windows.py)."""

    def __init__(self, photos: Photos, cfg, share: MachineShare | None = None):
        self.photos, self.cfg, self.share = photos, cfg, share

    def __len__(self) -> int:
        return (self.share.machines * self.share.fewest if self.share else len(self.photos)) * self.cfg.windows_per_photo

    @property
    def pictures(self) -> int:
        return self.share.pictures if self.share else len(self.photos)

    def nbytes(self) -> int:
        return self.photos.nbytes

    def to(self, device: torch.device) -> None:
        self.photos.to(device)  # windows are then cut on the device, a batch at once

    def readers(self, rank: int, world: int) -> tuple[int, int]:
        return (self.share.readers, self.share.reader) if self.share else (world, rank)

    def epoch(self, seed: int, epoch: int, global_batch: int) -> WindowDraws:
        if self.share is None:
            draws = draw_windows(seed, epoch, len(self.photos), max(len(self), global_batch))
        else:  # the whole collection's draws; the machine's, in order
            n = self.share.collection
            every = draw_windows(seed, epoch, n, n * self.share.repeats(self.cfg.windows_per_photo, global_batch))
            positions, local = self.share.take(every.picture)
            draws = WindowDraws(local, *(getattr(every, f)[positions] for f in ("uniform", "flips", "turns", "channel_order")))
        return draws.to(self.photos.table.device)  # on the GPU with the pixels: no copy from the host per batch

    def batch(self, draws: WindowDraws, start: int, size: int, device, color: str) -> torch.Tensor:
        x = window_batch(self.photos, draws, start, size, self.cfg.max_zoom, self.cfg.rotate,
                         self.cfg.shuffle_channels).to(device, non_blocking=True)
        return to_network(x.permute(0, 3, 1, 2), color)


PHOTO_OPTIONS = ("windows_per_photo", "max_zoom", "rotate", "shuffle_channels")  # read only for photos beyond 64x64


def load_data(cfg, say, progress, named: set[str] = frozenset()):
    """(split, training source, validation pixels): thumbnails as they are, or windows of photographs. named: the
    options the user gave; one that only shapes photo windows is refused on 64x64 pictures, before any decoding.
    Under torchrun every process calls this: the processes of each machine build its cache together."""
    split = split_dataset(cfg.data)
    files = class_fraction(split.train, cfg.fraction, cfg.seed, split.layout)
    photos = split.layout == "folder" and not all_thumbnails(files)
    unused = [f"--{n.replace('_', '-')}" for n in PHOTO_OPTIONS if n in named]
    if unused and not photos:  # every process takes this decision, before any collective below
        raise AutoencError(f"{cfg.data}: 64x64 pictures, taken as they are; {', '.join(unused)} only shape windows of "
                           "larger photos")
    if photos:
        source, val_pixels, skipped = load_photos(files, split.val, cfg, progress)
    else:
        source, val_pixels, skipped = load_thumbnails(files, split.val, cfg, progress)
    if skipped:
        say(f"[yellow]warning:[/] skipped {counted(skipped, 'unreadable image file')} in {cfg.data}")
    return split, source, val_pixels


def validating_here() -> bool:
    """Whether the process's machine runs rank 0, the process that validates (torchrun numbers a machine's ranks together)."""
    rank, _, local_rank, _ = process_place()
    return rank == local_rank


def machine_files(files, val_files, weights):
    """(the process's machine's training files, their indices, the validation files it decodes): all of them on one
    machine; on several, its share, and the validation files on rank 0's machine alone."""
    machine, machines = machine_place()
    mine = machine_share(weights, machines, machine)
    return [files[i] for i in mine], mine, (val_files if machines == 1 or validating_here() else [])


def agreed(readable: int, missing: list[int], skipped: int, files: list,
           mine: list[int]) -> tuple[MachineShare | None, int, int]:
    """(the machine share, readable training pictures, skipped files), the same in every process: one all-reduce
    of each machine's counts (its first process's) under torchrun."""
    _, machines = machine_place()
    _, world, local_rank, local_world = process_place()
    if world == 1 or not dist.is_initialized():
        return None, readable, skipped
    first = int(local_rank == 0)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None  # nccl: GPU tensors
    fewest = torch.tensor([readable], dtype=torch.long, device=device)
    counts = torch.tensor([readable * first, skipped * first], dtype=torch.long, device=device)  # once per machine
    dist.all_reduce(fewest, dist.ReduceOp.MIN)
    dist.all_reduce(counts)
    pictures, skipped, fewest = int(counts[0]), int(counts[1]), int(fewest)
    if pictures == 0 or machines == 1:
        return None, pictures, skipped
    if fewest == 0:
        raise AutoencError(f"{machines} machines, but one of them has no readable training picture to draw windows "
                           f"from ({pictures} in all); train on fewer machines")
    local = torch.full((len(files),), -1, dtype=torch.long)
    unreadable = set(missing)
    kept = [i for k, i in enumerate(mine) if k not in unreadable]
    local[kept] = torch.arange(len(kept))
    return MachineShare(len(files), local, machines, local_world, local_rank, fewest, pictures), pictures, skipped


def skipped_of(*entries) -> int:
    return sum(entry.skipped for entry in entries if entry is not None)  # None: nothing to decode on the machine


def load_thumbnails(files, val_files, cfg, progress):
    here, mine, val_here = machine_files(files, val_files, [1] * len(files))

    def build(label):
        return lambda part, workers: cached_images(part, cfg.cache_dir, progress, label, workers)

    train = built_together(here, None, build("decoding train images"), CachedImages.joined)
    val = built_together(val_here, None, build("decoding val images"), CachedImages.joined) if val_files else None
    share, pictures, skipped = agreed(len(train.pixels) if train is not None else 0, train.missing if train is not None else [],
                                      skipped_of(train, val), files, mine)
    if pictures == 0:
        raise AutoencError(f"{cfg.data}: none of the {len(files)} training image files could be read")
    if val is not None and len(val.pixels):
        val_pixels = val.pixels
    elif val_files and not val_here:
        val_pixels = np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)  # another machine validates
    else:
        val_pixels = train.pixels[-min(len(train.pixels), 256):]
    return Thumbnails(train.pixels, share), val_pixels, skipped


def load_photos(files, val_files, cfg, progress):
    _, world, _, _ = process_place()
    sizes = header_sizes(files + val_files, image_size) if world > 1 else [None] * (len(files) + len(val_files))
    here, mine, val_here = machine_files(files, val_files, [stored_pixels(s) for s in sizes[:len(files)]])
    pixels = [size[0] * size[1] if size else 0 for size in sizes]  # what each process decodes: split by these

    def build(label):
        return lambda part, workers: cached_photos(part, cfg.cache_dir, progress, label, workers)

    train = built_together(here, [pixels[i] for i in mine], build("decoding train photos"), Photos.joined)
    val = (built_together(val_here, pixels[len(files):] if val_here else None, build("decoding val photos"), Photos.joined)
           if val_files else None)
    share, pictures, skipped = agreed(len(train) if train is not None else 0, train.missing if train is not None else [],
                                      skipped_of(train, val), files, mine)
    if pictures == 0:
        raise AutoencError(f"{cfg.data}: none of the {len(files)} training image files could be read")
    if val_files and not val_here:
        val_pixels = np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)  # another machine validates
    else:
        val_pixels = fixed_windows(val if val is not None and len(val) else train, VAL_WINDOWS_PER_PHOTO, cfg.max_zoom)
    return Windows(train, cfg, share), val_pixels, skipped
