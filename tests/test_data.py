import numpy as np
import pytest
from conftest import photo_like, write_image
from PIL import Image

from autoenc_cli.data.reading import load_square

from autoenc_cli.data.cache import cached_images

from autoenc_cli.data.splits import split_dataset
from autoenc_cli.errors import AutoencError


def test_tiny_imagenet_tree_loads_with_right_counts(tiny_imagenet, tmp_path):
    split = split_dataset(tiny_imagenet)
    assert split.layout == "tiny-imagenet"
    assert len(split.train) == 3 * 6 + 1  # the corrupt file is found ...
    assert len(split.val) == 4
    cache = cached_images(split.train, tmp_path / "cache")
    assert cache.skipped == 1  # ... and skipped, not fatal
    assert cache.pixels.shape == (18, 64, 64, 3) and cache.pixels.dtype == np.uint8
    # grayscale JPEGs became RGB with equal channels
    gray = [i for i, p in enumerate(f for f in split.train if "broken" not in f.name) if i % 5 == 0]
    px = np.asarray(cache.pixels[gray[0]]).astype(int)
    assert np.abs(px[..., 0] - px[..., 1]).max() <= 2


def test_cache_is_reused_and_rebuilt_when_files_change(tiny_imagenet, tmp_path):
    files = split_dataset(tiny_imagenet).val
    first = cached_images(files, tmp_path / "c")
    again = cached_images(files, tmp_path / "c")
    assert again.path == first.path and np.array_equal(first.pixels, again.pixels)
    write_image(files[0], photo_like(np.random.default_rng(9)), format="JPEG")
    changed = cached_images(files, tmp_path / "c")
    assert changed.path != first.path
    assert not np.array_equal(changed.pixels[0], first.pixels[0])


def test_dataset_folder_is_never_written(tiny_imagenet, tmp_path):
    before = sorted(p for p in tiny_imagenet.rglob("*"))
    cached_images(split_dataset(tiny_imagenet).train, tmp_path / "c")
    assert sorted(p for p in tiny_imagenet.rglob("*")) == before


def test_plain_folder_recursive_case_insensitive_with_held_out_split(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(40):
        ext = [".png", ".JPG", ".jpeg", ".Png"][i % 4]
        fmt = "PNG" if "p" in ext.lower() else "JPEG"
        write_image(tmp_path / "photos" / f"sub{i % 3}" / f"img{i}{ext}", photo_like(rng), format=fmt)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    split = split_dataset(tmp_path / "photos")
    assert split.layout == "folder"
    assert len(split.train) + len(split.val) == 40
    assert split.val and not set(split.train) & set(split.val)
    assert split_dataset(tmp_path / "photos").val == split.val  # deterministic


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16", "1"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    pixels = photo_like(np.random.default_rng(2))
    img = Image.fromarray(pixels, "RGB")
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
        assert img.mode == "I;16"
    else:
        img = img.convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    out = load_square(path)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    if mode == "I;16":  # 16-bit scaled down, not clipped to white
        assert abs(out.mean() - np.asarray(Image.fromarray(pixels).convert("L")).mean()) < 2


def test_non_square_image_is_center_cropped_and_resized(tmp_path):
    pixels = np.zeros((100, 300, 3), np.uint8)
    pixels[:, 100:200] = 255  # white centre square, black sides
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    out = load_square(path)
    assert out.shape == (64, 64, 3)
    assert out.min() >= 250  # only the centre square is kept


def test_missing_and_empty_datasets_are_clear_errors(tmp_path):
    with pytest.raises(AutoencError, match="no such file"):
        split_dataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutoencError, match="no images found"):
        split_dataset(tmp_path / "empty")


def test_all_unreadable_images_is_an_error(tmp_path):
    from autoenc_cli.training.train import TrainConfig, train
    root = tmp_path / "bad"
    root.mkdir()
    for i in range(5):
        (root / f"x{i}.png").write_text("text, not a png")
    with pytest.raises(AutoencError, match="could be read"):
        train(TrainConfig(data=str(root), out=str(tmp_path / "run"), max_steps=1), say=lambda *a: None)


def test_the_validation_split_stays_as_files_are_added_and_the_folder_moves(tmp_path):
    """Each file's side comes from its own relative name: adding files, or moving the whole folder, moves none of
    the files already there from train to validation or back; about VAL_FRACTION is held out."""
    from autoenc_cli.data.splits import VAL_FRACTION
    for i in range(300):
        (tmp_path / "a" / f"s{i % 3}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "a" / f"s{i % 3}" / f"img{i:03d}.png").write_bytes(b"")  # the split reads names only
    before = split_dataset(tmp_path / "a")
    for i in range(300, 600):
        (tmp_path / "a" / f"s{i % 3}" / f"img{i:03d}.png").write_bytes(b"")
    (tmp_path / "a" / "aaa-first.png").write_bytes(b"")  # a name sorting before all the others
    after = split_dataset(tmp_path / "a")
    assert set(before.val) <= set(after.val) and set(before.train) <= set(after.train)
    assert 0.5 * VAL_FRACTION * 601 < len(after.val) < 2 * VAL_FRACTION * 601
    (tmp_path / "a").rename(tmp_path / "moved")
    moved = split_dataset(tmp_path / "moved")
    assert [p.relative_to(tmp_path / "moved") for p in moved.val] == [p.relative_to(tmp_path / "a") for p in after.val]
