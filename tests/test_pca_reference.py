"""benchmarks/pca_reference.py: the linear reference fits, tiles and scores as autoenc eval does."""

import sys
from pathlib import Path

import numpy as np
from conftest import write_image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import pca_reference  # noqa: E402


def blends(rng, count, a, b):
    """Pictures on the line from a to b: one direction of variation, which one component holds exactly."""
    return [np.round(t * a + (1 - t) * b).astype(np.uint8) for t in rng.uniform(0, 1, count)]


def test_one_component_holds_pictures_of_one_direction_and_not_others(tmp_path):
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (64, 64, 3)).astype(np.float64) for _ in range(2))
    for i, picture in enumerate(blends(rng, 30, a, b)):
        write_image(tmp_path / "fit" / f"f{i}.png", picture, format="PNG")
    for i, picture in enumerate(blends(rng, 5, a, b)):
        write_image(tmp_path / "crops" / f"c{i}.png", picture, format="PNG")
    left, right = blends(rng, 2, a, b)
    write_image(tmp_path / "whole" / "two_tiles.png", np.concatenate([left, right], axis=1), format="PNG")
    report = pca_reference.main([str(tmp_path / "fit"), "--crops", str(tmp_path / "crops"), "--whole",
                                 str(tmp_path / "whole"), "--components", "1", "--json", str(tmp_path / "r.json")])
    assert report["windows"] == 30 and report["variance_kept"] > 0.99
    assert report["crops"]["images"] == 5 and report["crops"]["psnr"] > 45  # only 8-bit rounding is lost
    assert report["whole"]["pictures"] == 1 and report["whole"]["psnr"] > 45  # tiles cut and put back in place
    assert (tmp_path / "r.json").is_file()
    pca = pca_reference.PCA(np.stack(blends(rng, 30, a, b)).reshape(30, -1), 1)
    other = rng.integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    assert np.abs(pca.reconstruct(other).astype(int) - other).mean() > 40  # off the line: not held


def test_windows_come_from_both_scales_and_pictures_keep_their_size():
    rng = np.random.default_rng(1)
    photo = np.zeros((200, 300, 3), np.uint8)
    photo[:, 150:] = 255  # the right half white: at half scale, windows see the edge more often
    windows = pca_reference.photo_windows(photo, 10, rng)
    assert windows.shape == (10, 64, 64, 3)
    assert pca_reference.photo_windows(photo[:64, :64], 10, rng).shape == (1, 64, 64, 3)
    pca = pca_reference.PCA(windows.reshape(10, -1), 10)  # as many components as windows: every window held
    picture = rng.integers(0, 256, (70, 90, 3)).astype(np.uint8)
    assert pca_reference.reconstruct_picture(pca, picture).shape == (70, 90, 3)
    assert np.abs(pca.reconstruct(windows).astype(int) - windows).max() <= 1
