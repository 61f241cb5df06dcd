"""eval --rd: bytes, bits per pixel and quality of every latent dtype against JPEG and WebP (issue 19)."""

import json
import lzma
import zlib

import numpy as np
import pytest
from conftest import photo_like, write_image
from PIL import Image
from typer.testing import CliRunner

from autoenc_cli.cli.app import app
from autoenc_cli.codec.latentfile import DTYPES, latent_file_bytes, save_latent, sidecar_path
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.measures.ratedistortion import (CODEC_COLORS, COUNTS, STORAGES, bpp_for_psnr, interpolate, lossless_sizes,
                                        lzma_size, rate_distortion, write_rd_png)
from autoenc_cli.model.weights import fingerprint, load_model, save_weights

QUALITIES = (10, 30, 60, 90)
PICTURES = 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A folder of smooth generated pictures, a small random model, and the measurement on them (done once)."""
    root = tmp_path_factory.mktemp("rd")
    rng = np.random.default_rng(0)
    for i in range(PICTURES):
        write_image(root / "data" / f"p{i}.png", photo_like(rng))
    model = Autoencoder()
    init_weights(model)
    save_weights(model, root / "w.safetensors")
    model, _ = load_model(root / "w.safetensors")
    result = rate_distortion(root / "data", model, cache_dir=root / "cache", made_with=fingerprint(root / "w.safetensors"),
                             qualities=QUALITIES)
    return root, result.to_json()


def test_the_bytes_are_those_encode_writes_and_ordered_by_dtype(setup, tmp_path):
    root, summary = setup
    latents = summary["latents"]
    assert summary["images"] == PICTURES and summary["skipped"] == 0 and list(latents) == list(DTYPES)
    for count in COUNTS:
        stored = [latents[d][f"{count}_bytes"]["stored"] for d in DTYPES]
        assert stored[0] > stored[1] > stored[2]  # float32 > float16 > int8
    for dtype, itemsize in (("float32", 4), ("float16", 2), ("int8", 1)):
        assert latents[dtype]["values_bytes"] == 2048 * itemsize
        assert latents[dtype]["array_bytes"]["stored"] == 128 + 2048 * itemsize  # the .npy header, then the values
        assert latents[dtype]["file_bytes"]["stored"] > latents[dtype]["array_bytes"]["stored"]  # plus the sidecar
    # what save_latent writes to disk is byte for byte what was counted
    z = np.abs(np.random.default_rng(1).normal(size=(128, 4, 4))).astype(np.float32)
    made_with = fingerprint(root / "w.safetensors")
    save_latent(tmp_path / "z.npy", z, (64, 64), "int8", weights=made_with)
    npy, sidecar = latent_file_bytes(z, (64, 64), "int8", weights=made_with)
    assert (tmp_path / "z.npy").read_bytes() == npy and sidecar_path(tmp_path / "z.npy").read_bytes() == sidecar


def test_compressed_is_no_larger_than_stored_and_bpp_is_8_bytes_per_pixel(setup):
    _, summary = setup
    for latent in summary["latents"].values():
        for count in COUNTS:
            sizes = latent[f"{count}_bytes"]
            assert sizes["zlib"] <= sizes["stored"] and sizes["lzma"] <= sizes["stored"]
            for storage in STORAGES:
                assert latent[f"{count}_bpp"][storage] == pytest.approx(8 * sizes[storage] / (64 * 64))
    for curve in summary["codecs"].values():
        for point in curve:
            assert point["bpp"] == pytest.approx(8 * point["bytes"] / 4096)


def test_the_fast_lzma_size_is_preset_9s():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(128, 4, 4)).astype(np.float32)
    for data in (*latent_file_bytes(z, (64, 64), "int8"), latent_file_bytes(z, (64, 64))[0],
                 rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes(), b"", b"a" * 5000):
        assert lzma_size(data) == len(lzma.compress(data, preset=9))
    data = b"a" * 1000
    assert lossless_sizes(data) == {"stored": 1000, "zlib": len(zlib.compress(data, 9)),
                                    "lzma": len(lzma.compress(data, preset=9))}


def test_codec_curves_grow_with_quality(setup):
    _, summary = setup
    for name, curve in summary["codecs"].items():
        assert [c["quality"] for c in curve] == list(QUALITIES), name
        for key in ("bytes", "psnr", "ssim"):
            values = [c[key] for c in curve]
            assert values == sorted(values), (name, key, values)  # monotone, ties allowed
        assert curve[-1]["psnr"] > curve[0]["psnr"] + 3  # and really rising
    # the comparison: the model's PSNR minus the codec's, interpolated at the same bpp, or None outside the curve
    for row in summary["versus"]:
        for codec, curve in summary["codecs"].items():
            inside = curve[0]["bpp"] <= row["bpp"] <= curve[-1]["bpp"]
            assert (row[f"{codec}_db"] is not None) == inside
            if inside:
                assert row[f"{codec}_db"] == pytest.approx(row["psnr"] - row[f"{codec}_psnr"])
    assert len(summary["versus"]) == len(DTYPES) * len(COUNTS) * len(STORAGES)


def test_interpolate():
    curve = [{"bpp": 1.0, "psnr": 30.0}, {"bpp": 3.0, "psnr": 34.0}, {"bpp": 2.0, "psnr": 33.0}]  # any order
    assert interpolate(curve, 1.5) == pytest.approx(31.5)
    assert interpolate(curve, 2.5) == pytest.approx(33.5)
    assert interpolate(curve, 3.0) == pytest.approx(34.0)
    assert interpolate(curve, 0.5) is None and interpolate(curve, 3.5) is None
    assert bpp_for_psnr(curve, 31.5) == pytest.approx(1.5)  # the other way round
    assert bpp_for_psnr(curve, 34.0) == pytest.approx(3.0)
    assert bpp_for_psnr(curve, 29.0) is None and bpp_for_psnr(curve, 35.0) is None  # never extrapolated
    dip = curve + [{"bpp": 4.0, "psnr": 32.0}, {"bpp": 5.0, "psnr": 36.0}]  # not monotone: the first crossing
    assert bpp_for_psnr(dip, 33.5) == pytest.approx(2.5)


def test_the_plot_is_a_real_picture(setup, tmp_path):
    _, summary = setup
    write_rd_png(summary, tmp_path / "rd.png", "title")
    with Image.open(tmp_path / "rd.png") as img:
        assert img.format == "PNG" and img.size == (1100, 540)
        pixels = np.asarray(img.convert("RGB"))
    for color in CODEC_COLORS.values():  # both codecs' curves are drawn
        rgb = np.array(Image.new("RGB", (1, 1), color))[0, 0]
        assert np.all(pixels == rgb, axis=-1).sum() > 100
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_the_command(setup, tmp_path, monkeypatch):
    root, _ = setup
    runner = CliRunner()
    args = ["eval", str(root / "data"), "-w", str(root / "w.safetensors"), "--cache-dir", str(root / "cache"), "--rd"]
    env = {"COLUMNS": "250"}
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args + ["--json", "--rd-png", "plot.png"], env=env)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]  # --rd writes nothing but the plot it was asked for
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == {"images", "skipped", "pixels_per_image", "latents", "codecs", "versus", "same_psnr"}
    assert set(summary["same_psnr"]["int8"]) == {"jpeg_bpp", "webp_bpp"}
    assert set(summary["latents"]["int8"]) == {"psnr", "ssim", "mse", "values_bytes", "array_bytes", "array_bpp",
                                               "file_bytes", "file_bpp"}
    assert [c["quality"] for c in summary["codecs"]["webp"]] == list(range(5, 100, 5))
    assert set(summary["codecs"]["jpeg"][0]) == {"quality", "bytes", "bpp", "psnr", "ssim", "mse"}
    assert Image.open(tmp_path / "plot.png").size == (1100, 540)
    table = runner.invoke(app, args, env=env)
    assert table.exit_code == 0, table.output
    assert "int8" in table.stdout and "lzma -9" in table.stdout and "WebP PSNR dB" in table.stdout
    assert "is reached, in bits per pixel, by JPEG at" in table.stdout
    bad = runner.invoke(app, ["eval", str(root / "data"), "--rd-png", str(tmp_path / "x.png")])
    assert bad.exit_code == 1 and "give --rd too" in bad.output and not (tmp_path / "x.png").exists()
    bad = runner.invoke(app, args + ["--whole"])
    assert bad.exit_code == 1 and "does not combine with --whole" in bad.output
    inside = runner.invoke(app, args + ["--rd-png", str(root / "data" / "rd.png")])
    assert inside.exit_code == 1 and "inside the dataset" in inside.output
    helptext = runner.invoke(app, ["eval", "--help"], env=env).output
    assert "--rd " in helptext and "--rd-png" in helptext and "none is written unless you name one" in helptext
