import numpy as np
import pytest
import torch
from conftest import photo_like, write_image
from test_photos import make_photos

from autoenc_cli.data.cache import CachedImages, cached_images
from autoenc_cli.data.pyramids import Photos, cached_photos, stored_pixels
from autoenc_cli.data.shards import (MachineShare, built_together, header_sizes, machine_place, machine_share, process_place,
                                     split_by_pixels, split_evenly)
from autoenc_cli.data.windows import draw_windows, window_batch


def test_pixels_are_split_evenly_and_every_index_once():
    pixels = [12_000_000, 300_000, 300_000, 8_000_000, 4_000_000, 64 * 64, 64 * 64, 2_000_000]
    shares = split_by_pixels(pixels, 2)
    assert sorted(i for s in shares for i in s) == list(range(len(pixels)))
    sums = [sum(pixels[i] for i in s) for s in shares]
    assert max(sums) - min(sums) <= max(pixels) and abs(sums[0] - sums[1]) < 0.1 * sum(pixels)
    assert all(s == sorted(s) for s in shares)
    assert split_by_pixels(pixels, 2) == shares  # the same in every process


def test_more_parts_than_items_leaves_some_empty_and_one_part_is_everything():
    assert split_by_pixels([5, 5], 3) == [[0], [1], []]
    assert split_by_pixels([3, 1, 2], 1) == [[0, 1, 2]]


def test_places_come_from_torchrun_s_environment(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert process_place() == (0, 1, 0, 1) and machine_place() == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "4"), monkeypatch.setenv("RANK", "3"), monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2"), monkeypatch.setenv("GROUP_RANK", "1")
    assert process_place() == (3, 4, 1, 2) and machine_place() == (1, 2)


def test_machine_shares_have_equal_counts_and_balanced_pixels():
    camera, web = stored_pixels((4000, 3000)), stored_pixels((640, 480))
    assert camera == 2048 * 1536 and stored_pixels(None) == 0  # cache bytes follow the pixels stored, capped
    mixed = [camera] * 3 + [web] * 30
    by_pixels, even = split_by_pixels(mixed, 2), split_evenly(mixed, 2)
    assert sorted(len(s) for s in by_pixels) == [12, 21]  # balanced bytes, but one machine's epoch would run out first
    assert sorted(len(s) for s in even) == [16, 17] and sorted(i for s in even for i in s) == list(range(33))
    shares = [sum(mixed[i] for i in s) / sum(mixed) for s in even]
    assert max(shares) < 0.6  # measured: 57% and 43%, as the docstring says
    alike = [camera + 1000 * (i % 7) for i in range(41)]
    for parts in (2, 3, 4):
        split = split_evenly(alike, parts)
        assert max(map(len, split)) - min(map(len, split)) <= 1 and all(s == sorted(s) for s in split)
        sums = [sum(alike[i] for i in s) for s in split]
        assert max(sums) <= min(sums) + camera + 6000  # within one picture
    assert split_evenly(alike, 4) == split  # the same in every process
    assert split_evenly([5, 5], 3) == [[], [0], [1]] and machine_share([4, 5, 6], 1, 0) == [0, 1, 2]


def shares_of(n: int, machines: int, readers: int, unreadable=()) -> list[MachineShare]:
    split = split_evenly([1] * n, machines)
    out = []
    for files in split:
        local = torch.full((n,), -1)
        kept = [i for i in files if i not in unreadable]
        local[kept] = torch.arange(len(kept))
        out.append(local)
    fewest = min(int((local >= 0).sum()) for local in out)
    return [MachineShare(n, local, machines, readers, 0, fewest, n - len(unreadable)) for local in out]


@pytest.mark.parametrize("n, machines, readers, batch, unreadable", [(20, 2, 1, 3, ()), (23, 3, 2, 2, (4, 9)), (5, 2, 2, 4, ())])
def test_each_machine_takes_the_collection_s_draws_of_its_own_pictures_in_order(n, machines, readers, batch, unreadable):
    shares = shares_of(n, machines, readers, unreadable)
    per_picture = shares[0].repeats(4, batch * readers * machines)
    draws = draw_windows(7, 3, n, n * per_picture).picture  # the whole collection's, as one process draws them
    steps = (shares[0].fewest * per_picture) // (batch * readers)
    assert steps >= 1
    owner = {}
    for m, share in enumerate(shares):
        positions, local = share.take(draws)
        assert positions.tolist() == sorted(positions.tolist()) and len(positions) >= steps * batch * readers
        assert (share.local[draws[positions]] == local).all() and (local >= 0).all()
        owner.update({p: m for p in positions.tolist()})
    readable = [p for p, picture in enumerate(draws.tolist()) if picture not in unreadable]
    assert sorted(owner) == readable  # every draw of a readable picture is one machine's, and only one's


def test_draws_that_would_not_fill_a_step_are_drawn_again():
    share = shares_of(6, 2, 2)[0]
    assert share.repeats(1, 64) == -(-32 // 3) and share.repeats(8, 4) == 8


def test_a_machine_cache_joined_from_parts_is_the_cache_of_one_process(tmp_path):
    files = sorted(make_photos(tmp_path / "p", count=5).glob("*.png"))
    (tmp_path / "p" / "photo_2.png").write_bytes(b"broken")
    members = [[0, 2, 3], [1, 4]]
    whole = cached_photos(files, tmp_path / "one")
    parts = [cached_photos([files[i] for i in m], tmp_path / "parts") for m in members]
    joined = Photos.joined(parts, members)
    assert len(joined.chunks) == 2 and joined.missing == whole.missing == [2] and len(joined) == len(whole) == 4
    assert joined.index != whole.index  # the pixels stay in their parts...
    for i in range(len(whole)):  # ...and every level reads the same
        for k in range(len(whole.index[i])):
            assert np.array_equal(joined.level(i, k), whole.level(i, k))
    draws = draw_windows(1, 0, len(whole), 16)
    assert torch.equal(window_batch(joined, draws, 0, 16), window_batch(whole, draws, 0, 16))
    joined.to(torch.device("cpu")), whole.to(torch.device("cpu"))  # the batched cutting, as on a GPU
    assert torch.equal(window_batch(joined, draws, 0, 16), window_batch(whole, draws, 0, 16))


def test_a_thumbnail_cache_joined_from_parts_reads_the_rows_of_one_process(tmp_path):
    rng = np.random.default_rng(0)
    files = [write_image(tmp_path / "t" / f"{i}.png", photo_like(rng)) for i in range(5)]
    files[1].write_bytes(b"broken")
    members = [[1, 3], [0, 2, 4]]
    whole = cached_images(files, tmp_path / "one")
    joined = CachedImages.joined([cached_images([files[i] for i in m], tmp_path / "parts") for m in members], members)
    assert joined.missing == whole.missing == [1] and len(joined.pixels) == len(whole.pixels) == 4
    assert np.array_equal(np.asarray(joined.pixels), np.asarray(whole.pixels))
    assert np.array_equal(joined.pixels[[3, 0, 0]], whole.pixels[[3, 0, 0]])
    assert np.array_equal(joined.pixels[-2:], whole.pixels[-2:]) and np.array_equal(joined.pixels[1], whole.pixels[1])


def test_without_torchrun_a_machine_cache_is_one_process_s(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    calls = []
    assert built_together(["a", "b"], None, lambda files, workers: calls.append((files, workers)) or "entry", None) == "entry"
    assert calls == [(["a", "b"], None)] and built_together([], None, None, None) is None
    assert header_sizes(["a", "bb"], len) == [1, 2]
