"""The Python API (issue 32): one path with the command line (byte-identical latents and pictures), the three
kinds of picture. docs/python.md's examples run as they are written in tests/test_docs.py."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo_like, run_cli, write_image
from PIL import Image

import autoenc_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ae():
    return autoenc_cli.load()


@pytest.fixture
def photo(tmp_path) -> Path:
    """A picture whose sides are not multiples of 16 (padded, then cropped back)."""
    return write_image(tmp_path / "photo.jpg", photo_like(np.random.default_rng(3), 96)[:70, :90], format="JPEG")


def test_python_and_the_shell_give_the_same_bytes(ae, photo, tmp_path):
    for dtype in ("float32", "int8"):
        run_cli("encode", photo, "-o", tmp_path / f"cli-{dtype}.npy", "--dtype", dtype)
        ae.encode_file(photo, tmp_path / f"api-{dtype}.npy", dtype=dtype)
        for suffix in (".npy", ".npy.json"):
            assert (tmp_path / f"cli-{dtype}{suffix}").read_bytes() == (tmp_path / f"api-{dtype}{suffix}").read_bytes()
    z = ae.encode(Image.open(photo))
    assert np.array_equal(np.load(tmp_path / "cli-float32.npy"), z)  # in memory too
    run_cli("decode", tmp_path / "cli-float32.npy", "-o", tmp_path / "cli.png")
    from_python = ae.decode(z, size=(90, 70))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cli.png")), np.asarray(from_python))
    assert np.array_equal(np.asarray(ae.reconstruct(Image.open(photo))), np.asarray(from_python))


def test_each_kind_of_picture_comes_back_as_its_own_kind(ae, photo):
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    assert ae.reconstruct(pixels).shape == pixels.shape and ae.reconstruct(pixels).dtype == np.uint8
    assert isinstance(ae.reconstruct(Image.open(photo).convert("L")), Image.Image)  # any mode, as files are read
    square = torch.from_numpy(pixels[:64, :64].copy()).permute(2, 0, 1)[None].float() / 255
    z = ae.encode(square)
    assert z.shape == (1, ae.latent_channels, 4, 4)
    np.testing.assert_allclose(z[0].numpy(), ae.encode(pixels[:64, :64]), atol=2e-3)  # bytes vs floats: rounding only
    back = ae.decode(z)
    assert back.shape == square.shape and 0 <= back.min() and back.max() <= 1
    assert ae.module.training is False and ae.device.type == "cpu" and "provenance" in ae.metadata


def test_bad_pictures_and_latents_say_what_to_give(ae):
    with pytest.raises(autoenc_cli.AutoencError, match="H x W x 3 uint8"):
        ae.encode(np.zeros((8, 8), np.float32))
    with pytest.raises(autoenc_cli.AutoencError, match="multiples of 16"):
        ae.encode(torch.zeros(1, 3, 20, 20))
    with pytest.raises(autoenc_cli.AutoencError, match="latent shape"):
        ae.decode(np.zeros((64, 2, 2), np.float32))
    with pytest.raises(TypeError, match="unknown settings"):
        autoenc_cli.train("anywhere", max_step=3)


def test_hubconf_loads_what_load_loads():
    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    assert isinstance(hub.autoenc(), autoenc_cli.Codec)
