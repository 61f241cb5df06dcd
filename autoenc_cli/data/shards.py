"""The share of a collection each process works on under torchrun: pictures (or batches of them) split into parts
of about equal pixels, the same split in every process, computed from the list alone (no messages between them).

For training on several machines: each machine's share of the training pictures (split_evenly), the windows of an
epoch that fall to it (MachineShare), and its cache built by all of its processes together (built_together)."""

import heapq
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


def split_by_pixels(pixels: list[int], parts: int) -> list[list[int]]:
    """Indices of `pixels` split into `parts` lists of about equal sums (each index's weight is its pixel count):
    the largest first, each to the lightest part so far (ties to the lowest part), each list then in index order.
    Deterministic, so every process computes the same split. A part may be empty when there are fewer items."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    heap = [(0, part) for part in range(parts)]
    shares: list[list[int]] = [[] for _ in range(parts)]
    for i in sorted(range(len(pixels)), key=lambda i: (-pixels[i], i)):
        load, part = heapq.heappop(heap)
        shares[part].append(i)
        heapq.heappush(heap, (load + max(1, pixels[i]), part))
    return [sorted(share) for share in shares]


def process_place() -> tuple[int, int, int, int]:
    """(rank, world size, local rank, processes on its machine) from torchrun's environment; (0, 1, 0, 1) without."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    return rank, world, int(os.environ.get("LOCAL_RANK", "0")), local_world


def machine_place() -> tuple[int, int]:
    """(the index of the machine it runs on, machines in the job) under torchrun: GROUP_RANK and WORLD_SIZE / LOCAL_WORLD_SIZE
    (torchrun gives every machine the same number of processes); (0, 1) without torchrun."""
    _, world, _, local_world = process_place()
    return int(os.environ.get("GROUP_RANK", "0")), max(1, world // max(1, local_world))


def split_evenly(weights: list[int], parts: int) -> list[list[int]]:
    """Indices split into `parts` lists of equal counts (within one) and about equal weights: the heaviest first,
    each to the lightest part that still has room, each list then in index order. Deterministic.

    Used for the machines' shares of a training collection, where both counts matter. Every picture gets the same
    number of windows per epoch and every process takes the same number of steps, so the epoch ends when the
    machine with the fewest pictures runs out of draws: a machine with more pictures leaves the rest of its own
    unused, and its pictures are seen less often than the others'. The cache's bytes follow the pixels stored.
    Equal counts keep the windows unbiased (a machine leaves at most one picture's windows more than another); the pixels
    are then balanced as far as equal counts allow: for photos of like sizes both are even, for a mixed collection
    the bytes give way. Measured in tests/test_shards.py, 3 camera photos and 30 of 640x480 on 2 machines:
    split_by_pixels gives 12 and 21 pictures (equal bytes; 43% of the second machine's windows left each epoch),
    split_evenly 16 and 17 pictures with 57% and 43% of the bytes."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    n = len(weights)
    # how many each may take; the last parts take the extra ones (machine 0 decodes the validation pictures too)
    room = [n // parts + (1 if part >= parts - n % parts else 0) for part in range(parts)]
    heap = [(0, part) for part in range(parts)]
    shares: list[list[int]] = [[] for _ in range(parts)]
    for i in sorted(range(n), key=lambda i: (-weights[i], i)):
        load, part = heapq.heappop(heap)
        while len(shares[part]) >= room[part]:  # full: out of the heap for good
            load, part = heapq.heappop(heap)
        shares[part].append(i)
        heapq.heappush(heap, (load + max(1, weights[i]), part))
    return [sorted(share) for share in shares]


@dataclass
class MachineShare:
    """A machine's part of training under torchrun on several machines.

    Each epoch's windows are drawn over the whole collection, as one process would draw them (windows.draw_windows,
    seeded by (seed, epoch)), each readable picture `repeats` times; each machine keeps, in order, the draws whose
    picture is in its share (take), and its processes read those as one process-group of `readers` would: at step s
    local rank l reads [s*B*readers + l*B, ...). Every machine has at least fewest * repeats draws, so every process
    takes (fewest * repeats) // (B * readers) steps per epoch; a machine with more pictures leaves its last draws."""
    collection: int  # the training files of the whole collection, readable or not
    local: torch.Tensor  # for each of them, its picture in the machine's cache; -1: another machine's, or unreadable
    machines: int
    readers: int  # processes on the machine (LOCAL_WORLD_SIZE)
    reader: int  # this process among them (LOCAL_RANK)
    fewest: int  # readable pictures of the machine with the fewest
    pictures: int  # readable pictures of the whole collection

    def repeats(self, per_picture: int, global_batch: int) -> int:
        """Draws per picture per epoch: `per_picture`, or more when a machine would not fill one step with them."""
        return max(per_picture, -(-(global_batch // self.machines) // max(1, self.fewest)))

    def take(self, picture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions, pictures): the draws (pictures of the collection) that are the machine's, in order, and
        their pictures in its cache."""
        local = self.local[picture]
        positions = (local >= 0).nonzero().flatten()
        return positions, local[positions]


def machine_share(weights: list[int], machines: int, machine: int) -> list[int]:
    """The machine's training files (indices, in order): equal counts, about equal cache bytes (split_evenly)."""
    return split_evenly(weights, machines)[machine] if machines > 1 else list(range(len(weights)))


def header_sizes(files: list, size_of) -> list:
    """size_of(file) for every file, each process reading 1/world of the headers; the same list in every process."""
    rank, world, _, _ = process_place()
    if world == 1 or not dist.is_initialized():
        return [size_of(f) for f in files]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, [size_of(f) for f in files[rank::world]])
    sizes = [None] * len(files)
    for r, part in enumerate(gathered):
        sizes[r::world] = part
    return sizes


def built_together(files: list, weights: list[int] | None, build, join):
    """A machine's cache entry for `files`, built by all its processes at once: each decodes its part (split by
    `weights`, the pixels to decode) with build(part, workers), each part a cache entry of its own keyed by its
    files; after a barrier every process opens the others' parts (cache hits, not decoded again) and joins them in
    the files' order: join(parts, members). Without torchrun it is build(files, None), as before. Every process of
    the job calls this the same number of times (it holds a barrier), with its own machine's `files`, which may be
    empty (then it returns None). Parts are reused on a rerun with the same processes per machine."""
    _, world, local_rank, local_world = process_place()
    if world == 1 or not dist.is_initialized():
        return build(files, None) if files else None
    members = [part for part in split_by_pixels(weights or [1] * len(files), local_world) if part]
    subsets = [[files[i] for i in part] for part in members]
    workers = max(1, (os.cpu_count() or 1) // local_world)  # the machine's cores shared, not all of them each
    mine = build(subsets[local_rank], workers) if local_rank < len(subsets) else None
    dist.barrier()  # in every process of every machine: the parts of each machine are all written
    if not files:
        return None
    # the others' parts are cache hits now; where the cache could not be written, each process decodes them itself
    parts = [mine if p == local_rank else build(subset, workers) for p, subset in enumerate(subsets)]
    return parts[0] if len(parts) == 1 else join(parts, members)
