import json

import numpy as np
import pytest
from conftest import make_tiny_imagenet, photo_like, run_cli, write_image
from PIL import Image
from skimage.metrics import structural_similarity  # the independent reference (test extra)

from autoenc_cli.errors import AutoencError
from autoenc_cli.codec.encoding import LABEL_WIDTH, PSNR_HEIGHT, reconstruct
from autoenc_cli.measures.evaluate import JPEG_BUDGET, bicubic, eval_files, jpeg, jpeg_bytes, jpeg_fit, worst_grid
from autoenc_cli.codec.metrics import mse_per_image, psnr_per_image, ssim_per_image
from autoenc_cli.model.autoencoder import Autoencoder


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=-1)


@pytest.mark.parametrize("shape", [(64, 64), (40, 72)])
def test_ssim_matches_scikit_image(shape):
    rng = np.random.default_rng(1)
    clean = np.stack([np.asarray(Image.fromarray(photo_like(rng, 96)).resize(shape[::-1])) for _ in range(3)])
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    other = clean[::-1].copy()  # unrelated pictures
    for a, b in [(clean, noisy), (clean, other), (clean, clean), (clean, np.zeros_like(clean))]:
        ours = ssim_per_image(a, b).numpy()
        ref = np.array([reference_ssim(x, y) for x, y in zip(a, b)])
        np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert np.allclose(ssim_per_image(clean, clean).numpy(), 1.0)


def test_psnr_and_mse_known_values():
    a = np.random.default_rng(0).integers(0, 240, (2, 64, 64, 3), dtype=np.uint8)
    assert psnr_per_image(a, a).tolist() == [100.0, 100.0]  # identical: the cap
    assert mse_per_image(a, a).tolist() == [0.0, 0.0]
    b = a + 5  # every pixel off by 5 levels: MSE 25
    assert mse_per_image(a, b).tolist() == [25.0, 25.0]
    np.testing.assert_allclose(psnr_per_image(a, b).numpy(), 10 * np.log10(255**2 / 25))
    c = a.copy()
    c[:, :32] += 10  # half the pixels off by 10: MSE 50
    np.testing.assert_allclose(mse_per_image(a, c).numpy(), 50.0)


def test_jpeg_baseline_fits_the_budget_at_the_largest_quality():
    rng = np.random.default_rng(2)
    images = np.stack([photo_like(rng) for _ in range(3)] + [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)])
    for img in images:
        data, q = jpeg_fit(img)
        assert len(data) <= JPEG_BUDGET or q == 1
        assert data == jpeg_bytes(img, q)
        if q < 95:
            assert len(jpeg_bytes(img, q + 1)) > JPEG_BUDGET  # the next quality up would not fit
    recon, sizes, qualities = jpeg(images)
    assert recon.shape == images.shape and recon.dtype == np.uint8
    assert all(s <= JPEG_BUDGET for s, q in zip(sizes, qualities) if q > 1)
    assert psnr_per_image(images[:3], recon[:3]).min() > 25  # smooth pictures survive 1 KB well
    data, q = jpeg_fit(images[0], budget=50)  # nothing fits: quality 1, over budget
    assert q == 1 and len(data) > 50


def test_bicubic_baseline():
    flat = np.full((2, 64, 64, 3), 117, np.uint8)
    assert (bicubic(flat) == flat).all()  # a constant survives the round trip exactly
    img = photo_like(np.random.default_rng(3))[None]
    out = bicubic(img)
    assert out.shape == img.shape and 25 < psnr_per_image(img, out).item() < 100


def test_eval_files_and_worst_grid(tmp_path):
    root = make_tiny_imagenet(tmp_path / "tin", val=4)
    assert len(eval_files(root)) == 4  # a Tiny ImageNet root: its val split
    assert len(eval_files(root / "train")) == 3 * 6 + 1  # a plain folder: all of it, broken file included
    with pytest.raises(AutoencError, match="is a file"):
        eval_files(root / "wnids.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutoencError, match="no images found"):
        eval_files(tmp_path / "empty")

    rng = np.random.default_rng(4)
    pixels = np.stack([photo_like(rng) for _ in range(5)])
    model = Autoencoder().eval()
    psnr = psnr_per_image(pixels, reconstruct(model, pixels)).tolist()
    grid = worst_grid(model, pixels[np.argsort(psnr, kind="stable")])
    worst = int(np.argmin(psnr))
    left = LABEL_WIDTH + 2  # right of the row names
    assert (grid[2:130, left:left + 128] == pixels[worst].repeat(2, 0).repeat(2, 1)).all()  # worst first, top left


@pytest.mark.slow
def test_eval_cli_json_table_and_worst_png(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "pictures"
    for i in range(7):
        write_image(folder / f"p{i}.png", photo_like(rng), format="PNG")
    write_image(folder / "sub" / "big.jpg", photo_like(rng, 100), format="JPEG")  # not 64x64: cropped and resized
    (folder / "broken.png").write_bytes(b"not a png")
    run = tmp_path / "run"
    run_cli("train", folder, "--out", run, "--max-steps", 2, "--batch-size", 4)
    weights = run / "model.safetensors"

    proc = run_cli("eval", folder, "--json", "-w", weights, "--worst-png", tmp_path / "worst.png", cwd=tmp_path, check=False)
    assert proc.returncode == 1  # all done but broken.png, which the last line names
    result = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert result["images"] == 8 and result["skipped"] == 1  # every image of the folder, not a validation slice
    for scores in (result, result["baselines"]["bicubic"], result["baselines"]["jpeg"]):
        assert {"psnr", "ssim", "mse"} <= scores.keys()
        assert 0 < scores["psnr"] < 100 and -1 <= scores["ssim"] <= 1 and scores["mse"] > 0
    jpeg = result["baselines"]["jpeg"]
    assert jpeg["bytes"] <= JPEG_BUDGET and 1 <= jpeg["quality"] <= 95 and jpeg["over_budget"] == 0
    assert result["baselines"]["bicubic"]["psnr"] > result["psnr"]  # 2 training steps lose to bicubic
    assert "model.safetensors" in proc.stderr and "skipped 1 of 9 pictures, unreadable" in proc.stderr
    assert proc.stderr.splitlines()[-1].endswith("broken.png: not an image Pillow can read")
    worst = Image.open(tmp_path / "worst.png")
    assert worst.mode == "RGB" and worst.size == (LABEL_WIDTH + 2 * (8 * 65 + 1), 2 * 2 * 65 + PSNR_HEIGHT + 2)

    proc = run_cli("eval", folder, "--limit", 3, "-w", weights, "--worst-png", tmp_path / "w.png", cwd=tmp_path, check=False)
    assert "bicubic" in proc.stdout and "jpeg" in proc.stdout
    assert "2 images" in proc.stdout and "skipped 1" in proc.stderr  # the first 3 files, sorted: broken.png, p0, p1
    assert (tmp_path / "w.png").is_file()

    proc = run_cli("eval", tmp_path / "missing", "-w", weights, check=False)
    assert proc.returncode == 1 and "missing" in proc.stderr and "Traceback" not in proc.stderr

    before = sorted(folder.iterdir())
    proc = run_cli("eval", folder, "-w", weights, cwd=folder, check=False)  # no --worst-png: nothing is written anywhere
    assert proc.returncode == 1 and sorted(folder.iterdir()) == before and "worst reconstructions" not in proc.stderr
    proc = run_cli("eval", folder, "-w", weights, "--worst-png", folder / "w.png", check=False)
    assert proc.returncode == 1 and "inside the dataset" in proc.stderr and not (folder / "w.png").exists()
