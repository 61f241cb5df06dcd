"""Pictures of any size, latent dtypes and the sidecar format, end to end through the `autoenc` command.

Two sets of weights, both fast to make:
- `block`: hand-set so that a round trip replaces every 16x16 block by its mean colour, exactly.
  The expected pixels are known, so sizes, padding and cropping are checked pixel for pixel.
- `tuned`: the block network with every weight perturbed, then trained 50 steps on smooth
  pictures. All 3x3 taps are live and zero padding shapes the borders, as in a trained model.
"""

import json

import numpy as np
import pytest
import torch
from blockmodel import block_mean_model, block_means, perturbed
from conftest import photo_like, run_cli, write_image
from PIL import Image

from autoenc_cli.codec.encoding import decode_latents, decode_picture, encode_file, encode_images, encode_picture, pad_to_multiple
from autoenc_cli.errors import AutoencError
from autoenc_cli.codec.latentfile import Latent, dequantize, load_latent, quantize, sidecar_path
from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.model.autoencoder import encode_pixels
from autoenc_cli.model.weights import fingerprint, save_weights


def smooth_picture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A large smooth picture with detail at the scale of a 64x64 training image everywhere."""
    y, x = np.mgrid[0:h, 0:w] / 64.0
    img = np.full((h, w, 3), 0.5)
    for c in range(3):
        for _ in range(6):
            a, b, p = rng.uniform(-1, 1, 3)
            img[..., c] += 0.08 * np.sin(2 * np.pi * (a * x + b * y) + 3 * p)
        for _ in range(8):
            cx, cy, r = rng.uniform(0, w / 64), rng.uniform(0, h / 64), rng.uniform(0.05, 0.15)
            img[..., c] += 0.25 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / r)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def tuned_model(steps: int = 50):
    rng = np.random.default_rng(0)
    x_all = encode_pixels(torch.from_numpy(np.stack([photo_like(rng) for _ in range(32)])).permute(0, 3, 1, 2))
    model = perturbed(block_mean_model(), 0.02).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine one thread is the fastest
    try:
        for _ in range(steps):
            x = x_all[torch.randint(0, len(x_all), (8,), generator=g)]
            loss = torch.nn.functional.mse_loss(model(x), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def saved(model, path, note: str):
    save_weights(model, path, {"note": note})
    return model, path


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    return saved(block_mean_model(), tmp_path_factory.mktemp("block") / "block.safetensors", "hand-set 16x16 block means")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    return saved(tuned_model(), tmp_path_factory.mktemp("tuned") / "tuned.safetensors", "block network, perturbed, 50 steps")


def read_png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.slow
def test_512x384_photo_gives_128x24x32_and_comes_back_512x384(block, tmp_path):
    _, weights = block
    pixels = smooth_picture(np.random.default_rng(1), 384, 512)
    src = write_image(tmp_path / "photo.png", pixels, format="PNG")
    proc = run_cli("encode", src, "-o", tmp_path / "z.npy", "-w", weights)
    assert "512x384" in proc.stdout and "(128, 24, 32)" in proc.stdout
    z = np.load(tmp_path / "z.npy", allow_pickle=False)
    assert z.shape == (128, 24, 32) and z.dtype == np.float32
    meta = json.loads((tmp_path / "z.npy.json").read_text())
    assert meta["format"] == "autoenc-latent" and meta["version"] == 1
    assert meta["original_size"] == [512, 384] and meta["padded_size"] == [512, 384]
    assert meta["weights"]["file"] == "block.safetensors" and len(meta["weights"]["sha256"]) == 64

    proc = run_cli("decode", tmp_path / "z.npy", "-o", tmp_path / "out.png", "-w", weights)
    assert "warning" not in proc.stderr  # the same weights that encoded it
    out = read_png(tmp_path / "out.png")
    assert out.shape == (384, 512, 3)
    assert np.abs(out.astype(int) - block_means(pixels)).max() <= 1  # every block exactly its mean


@pytest.mark.parametrize("w,h", [(100, 70), (17, 16), (8, 5), (1, 1), (300, 33)])
def test_sizes_that_are_not_multiples_of_16_round_trip_in_size(block, w, h):
    model, _ = block
    pixels = photo_like(np.random.default_rng(w * h), max(w, h))[:h, :w]
    z = encode_picture(model, pixels)
    assert z.shape == (128, -(-h // 16), -(-w // 16))
    out = decode_picture(model, Latent(z, (w, h)))
    assert out.shape == (h, w, 3)
    # padding is on the right and bottom, by reflection: the kept corner is the top-left one
    expected = block_means(pad_to_multiple(pixels))[:h, :w]
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_whole_picture_equals_its_64x64_pieces_with_the_block_network(block):
    """No seams by construction: the whole picture is one pass, and here the pieces agree to the pixel."""
    model, _ = block
    big = smooth_picture(np.random.default_rng(3), 192, 256)
    whole, stitched = whole_and_stitched(model, big)
    assert np.array_equal(whole, stitched)


def whole_and_stitched(model, big: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The picture through the network in one pass, and its 64x64 pieces through it one by one, put back together."""
    h, w = big.shape[:2]
    whole = decode_picture(model, Latent(encode_picture(model, big), (w, h)))
    crops = big.reshape(h // 64, 64, w // 64, 64, 3).swapaxes(1, 2).reshape(-1, 64, 64, 3)
    pieces = decode_latents(model, encode_images(model, crops))
    return whole, pieces.reshape(h // 64, w // 64, 64, 64, 3).swapaxes(1, 2).reshape(h, w, 3)


@pytest.mark.slow
def test_large_photo_psnr_is_within_1_db_of_its_64x64_crops(tuned):
    """The issue's seam check with trained weights: the whole picture in one pass against its 64x64
    crops stitched back, both scored over the whole picture (a mean of the crops' own PSNRs would
    not compare: averaging dB favours smooth crops)."""
    model, _ = tuned
    big = smooth_picture(np.random.default_rng(4), 384, 512)
    whole, stitched = whole_and_stitched(model, big)
    crop_psnr = psnr_per_image(stitched[None], big[None]).item()
    whole_psnr = psnr_per_image(whole[None], big[None]).item()
    assert crop_psnr > 24  # the tuned network reconstructs: the comparison means something
    assert whole_psnr > crop_psnr - 1.0, (whole_psnr, crop_psnr)


@pytest.mark.slow
def test_resize_64_centre_crops_and_resizes(block, tmp_path):
    _, weights = block
    src = write_image(tmp_path / "wide.png", smooth_picture(np.random.default_rng(5), 384, 512), format="PNG")
    run_cli("encode", src, "--resize", 64, "-o", tmp_path / "z.npy", "-w", weights)
    assert np.load(tmp_path / "z.npy").shape == (128, 4, 4)
    meta = json.loads((tmp_path / "z.npy.json").read_text())
    assert meta["resize"] == 64 and meta["original_size"] == [64, 64]
    run_cli("decode", tmp_path / "z.npy", "-o", tmp_path / "out.png", "-w", weights)
    assert Image.open(tmp_path / "out.png").size == (64, 64)


@pytest.mark.slow
def test_compact_dtypes_decode_close_to_float32(tuned, tmp_path):
    _, weights = tuned
    src = write_image(tmp_path / "in.png", smooth_picture(np.random.default_rng(6), 128, 192), format="PNG")
    for dtype in ("float32", "float16", "int8"):
        run_cli("encode", src, "--dtype", dtype, "-o", tmp_path / f"{dtype}.npy", "-w", weights)
    run_cli("decode", *(tmp_path / f"{d}.npy" for d in ("float32", "float16", "int8")), "-o", tmp_path / "out", "-w", weights)
    reference = read_png(tmp_path / "out" / "float32.png")
    assert reference.shape == (128, 192, 3)
    for dtype, itemsize, min_psnr in (("float16", 2, 45.0), ("int8", 1, 30.0)):
        stored = np.load(tmp_path / f"{dtype}.npy", allow_pickle=False)
        assert stored.dtype == np.dtype(dtype) and stored.shape == (128, 8, 12)
        assert (tmp_path / f"{dtype}.npy").stat().st_size == 128 + stored.size * itemsize  # 128: the .npy header
        meta = json.loads((tmp_path / f"{dtype}.npy.json").read_text())
        assert meta["dtype"] == dtype
        assert (meta["scale"] is not None and len(meta["scale"]) == 128) == (dtype == "int8")
        out = read_png(tmp_path / "out" / f"{dtype}.png")
        assert psnr_per_image(reference[None], out[None]).item() > min_psnr, dtype


def test_int8_quantization_error_is_about_half_a_step():
    rng = np.random.default_rng(0)
    z = np.abs(rng.normal(size=(128, 3, 5))).astype(np.float32)
    z[7] = 0  # a dead channel: scale must stay usable
    q, scale = quantize(z, "int8")
    assert q.dtype == np.int8 and len(scale) == 128 and np.abs(q).max() == 127
    back = dequantize(q, scale)
    step = np.asarray(scale)[:, None, None]
    # half a step, except the channel's largest value when rounding the scale to 3 digits clipped it
    assert np.all(np.abs(back - z) <= 0.65 * step)
    assert np.mean(np.abs(back - z) <= 0.5 * step + 1e-7) > 0.95
    assert all(len(repr(s)) <= 8 for s in scale)  # short in the sidecar
    assert np.all(back[7] == 0)


def test_plain_npy_without_sidecar_still_decodes(block, tmp_path):
    model, weights = block
    z = encode_images(model, photo_like(np.random.default_rng(7))[None])[0]
    np.save(tmp_path / "old.npy", z)  # as autoenc 0.1 wrote them: no sidecar
    np.save(tmp_path / "half.npy", np.zeros((128, 5, 7), np.float16))
    run_cli("decode", tmp_path / "old.npy", tmp_path / "half.npy", "-o", tmp_path / "out", "-w", weights)
    assert Image.open(tmp_path / "out" / "old.png").size == (64, 64)
    assert Image.open(tmp_path / "out" / "half.png").size == (112, 80)  # 16 times the latent: nothing to crop to


@pytest.mark.slow
def test_odd_sizes_and_a_glob_that_also_matches_the_sidecars(block, tmp_path):
    _, weights = block
    rng = np.random.default_rng(8)
    write_image(tmp_path / "p0.jpg", photo_like(rng, 100)[:70], format="JPEG", quality=95)
    write_image(tmp_path / "p1.png", photo_like(rng, 48), format="PNG")
    run_cli("encode", tmp_path / "p0.jpg", tmp_path / "p1.png", "--dtype", "int8", "-o", tmp_path / "lat", "-w", weights)
    everything = sorted((tmp_path / "lat").iterdir())  # what `autoenc decode lat/*` passes
    assert [p.name for p in everything] == ["p0.npy", "p0.npy.json", "p1.npy", "p1.npy.json"]
    assert np.load(everything[0]).shape == (128, 5, 7)
    assert json.loads(everything[1].read_text())["padded_size"] == [112, 80]
    run_cli("decode", *everything, "-o", tmp_path / "dec", "-w", weights)
    assert sorted(p.name for p in (tmp_path / "dec").iterdir()) == ["p0.png", "p1.png"]
    assert Image.open(tmp_path / "dec" / "p0.png").size == (100, 70)
    assert Image.open(tmp_path / "dec" / "p1.png").size == (48, 48)


def test_decoding_with_other_weights_warns(block, tuned, tmp_path):
    model, _ = block
    encode_file(model, write_image(tmp_path / "in.png", photo_like(np.random.default_rng(9)), format="PNG"),
                tmp_path / "z.npy", weights=fingerprint(block[1]))
    proc = run_cli("decode", tmp_path / "z.npy", "-o", tmp_path / "out.png", "-w", tuned[1])
    assert "warning" in proc.stderr and "block.safetensors" in proc.stderr


def test_bad_latents_are_clear_errors(block, tmp_path):
    model, weights = block
    z = encode_images(model, photo_like(np.random.default_rng(10))[None])[0]
    q, _ = quantize(z, "int8")
    np.save(tmp_path / "q.npy", q)  # int8 without its scales
    proc = run_cli("decode", tmp_path / "q.npy", "-o", tmp_path / "x.png", "-w", weights, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert lines[-1].startswith("error:") and "q.npy" in lines[-1] and "sidecar" in lines[-1]
    assert all(line.startswith("weights:") for line in lines[:-1])
    assert not (tmp_path / "x.png").exists()
    np.save(tmp_path / "z.npy", z)
    sidecar_path(tmp_path / "z.npy").write_text(json.dumps({"format": "autoenc-latent", "version": 1, "dtype": "float32",
                                                            "shape": [128, 5, 5], "original_size": [64, 64]}))
    with pytest.raises(AutoencError, match=r"z\.npy\.json: says shape"):
        load_latent(tmp_path / "z.npy", 128)
    sidecar_path(tmp_path / "z.npy").write_text("{not json")
    with pytest.raises(AutoencError, match=r"z\.npy\.json: unreadable"):
        load_latent(tmp_path / "z.npy", 128)
    sidecar_path(tmp_path / "z.npy").write_text(json.dumps({"format": "autoenc-latent", "version": 2}))
    with pytest.raises(AutoencError, match="version 2"):
        load_latent(tmp_path / "z.npy", 128)


def test_sidecar_original_size_must_fit_the_latent(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((128, 4, 4), np.float32))
    meta = {"format": "autoenc-latent", "version": 1, "dtype": "float32", "shape": [128, 4, 4], "original_size": [65, 64]}
    sidecar_path(tmp_path / "z.npy").write_text(json.dumps(meta))
    with pytest.raises(AutoencError, match="original_size"):
        load_latent(tmp_path / "z.npy", 128)
    meta["original_size"] = [50, 60]
    sidecar_path(tmp_path / "z.npy").write_text(json.dumps(meta))
    assert load_latent(tmp_path / "z.npy", 128).original_size == (50, 60)
