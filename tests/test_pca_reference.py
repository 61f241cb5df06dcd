"""benchmarks/pca_reference.py: the PCA reference fits the right subspace and is scored as autoenc eval scores."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import photo_like, write_image

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "pca_reference.py"
spec = importlib.util.spec_from_file_location("pca_reference", SCRIPT)
pca_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pca_reference)

BIG_SIZES = [(150, 200), (130, 97), (64, 300), (40, 90)]  # (40, 90): scaled up to a 64-pixel short side first


def photo(rng, h: int, w: int) -> np.ndarray:
    return photo_like(rng, max(h, w))[:h, :w]


def write_pictures(folder: Path, rng, small: int, big_sizes=()) -> Path:
    for i in range(small):
        write_image(folder / f"small{i}.png", photo_like(rng))
    for i, (h, w) in enumerate(big_sizes):
        write_image(folder / f"big{i}.png", photo(rng, h, w))
    return folder


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    fit = write_pictures(tmp_path / "fit", rng, 6, BIG_SIZES)
    crops = write_pictures(tmp_path / "crops", rng, 10)
    whole = write_pictures(tmp_path / "whole", rng, 1, [(150, 200), (70, 131)])
    return fit, crops, whole


def run(fit, crops, *extra) -> dict:
    return pca_reference.main([str(fit), "--crops", str(crops), "--samples", "200", *map(str, extra)])


def test_report_scores_crops_and_whole_pictures(folders, tmp_path):
    fit, crops, whole = folders
    report = run(fit, crops, "--whole", whole, "--components", 16, "--json", tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text()) == report
    assert report["components"] == 16 and report["fit_pictures"] == 10
    assert report["windows"] == 6 + 4 * 20  # a 64x64 file is one window; 200 shared over 10 files
    assert 0.5 < report["variance_kept"] <= 1
    assert report["crops"]["pictures"] == 10 and report["whole"]["pictures"] == 3
    for scored in (report["crops"], report["whole"]):
        assert math.isfinite(scored["psnr"]) and 10 < scored["psnr"] < 100
        assert 0 < scored["ssim"] <= 1
    assert set(report["seconds"]) == {"fit", "crops", "whole", "total"}


def test_all_components_give_back_the_fitted_pictures(tmp_path):
    fit = write_pictures(tmp_path / "fit", np.random.default_rng(1), 8)
    report = run(fit, fit, "--components", 12288)
    assert report["components"] == 7  # 8 centred pictures span 7 directions
    assert report["variance_kept"] == pytest.approx(1)
    assert report["crops"]["psnr"] > 60


def test_more_components_never_score_lower(folders):
    fit, crops, _ = folders
    reports = [run(fit, crops, "--components", k) for k in (2, 8, 32)]
    psnr = [r["crops"]["psnr"] for r in reports]
    kept = [r["variance_kept"] for r in reports]
    assert psnr == sorted(psnr) and psnr[0] < psnr[-1]
    assert kept == sorted(kept)


@pytest.mark.parametrize("count", [300, 30])  # more windows than numbers (covariance), fewer (Gram matrix)
def test_fit_finds_the_principal_subspace(count):
    rng = np.random.default_rng(2)
    mixed = rng.normal(size=(count, 4)) * [40, 25, 15, 8] @ rng.normal(size=(4, 48)) / 4
    windows = np.clip(128 + mixed + rng.normal(size=(count, 48)), 0, 255).astype(np.uint8)
    pca = pca_reference.fit_pca(windows, 4)
    x = windows / 255.0 - windows.mean(0) / 255.0
    reference = np.linalg.svd(x, full_matrices=False)[2][:4].T
    assert np.allclose(pca.mean.numpy(), windows.mean(0) / 255.0, atol=1e-6)
    assert np.allclose(pca.basis.numpy() @ pca.basis.numpy().T, reference @ reference.T, atol=1e-4)
    assert pca.variance_kept == pytest.approx((np.linalg.svd(x, compute_uv=False)[:4] ** 2).sum() / (x**2).sum())


class Identity:
    @staticmethod
    def reconstruct(tiles):
        assert tiles.shape[1:] == (64, 64, 3)
        return tiles


class TopLeft:
    @staticmethod
    def reconstruct(tiles):
        return np.broadcast_to(tiles[:, :1, :1], tiles.shape)  # each tile filled with its top-left pixel


def test_pictures_are_cut_into_tiles_and_put_back_in_place():
    pixels = np.random.default_rng(3).integers(0, 256, (130, 197, 3), dtype=np.uint8)
    assert np.array_equal(pca_reference.reconstruct_picture(Identity, pixels), pixels)
    out = pca_reference.reconstruct_picture(TopLeft, pixels)
    assert out.shape == pixels.shape
    assert (out[64:128, 128:192] == pixels[64, 128]).all() and (out[128:, 192:] == pixels[128, 192]).all()
