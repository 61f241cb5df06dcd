from autoenc_cli.data.shards import machine_place, process_place, split_by_pixels


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
