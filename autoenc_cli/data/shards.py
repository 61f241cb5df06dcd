"""The share of a collection each process works on under torchrun: pictures (or batches of them) split into parts
of about equal pixels, the same split in every process, computed from the list alone (no messages between them)."""

import heapq
import os


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
