"""The Python API (issue 32): one path with the command line (byte-identical latents and pictures), the three
kinds of picture. docs/python.md's examples run as they are written in tests/test_docs.py."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo_like, run_cli, write_image
from PIL import Image

import autoenc_cli
from autoenc_cli.data.reading import to_rgb

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


def odd_pictures(folder: Path) -> list[Path]:
    """Files whose reading is more than Image.convert("RGB"): transparency over white, EXIF rotation, a palette
    with a transparent entry, 16-bit and greyscale levels."""
    rng = np.random.default_rng(5)
    rgb = photo_like(rng, 64)[:, :32]  # 64 rows, 32 columns: turned, 32 rows and 64 columns
    alpha = np.linspace(0, 255, 64 * 32).reshape(64, 32).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    palette = Image.fromarray(rgb).quantize(16)
    clear = int(np.bincount(np.asarray(palette).ravel()).argmax())  # the commonest entry is transparent
    deep = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)  # mode I;16
    folder.mkdir()
    rgba.save(folder / "rgba.png")
    Image.fromarray(rgb).save(folder / "rotated.jpg", exif=exif, quality=95)
    palette.save(folder / "palette.png", transparency=clear)
    deep.save(folder / "deep.png")
    Image.fromarray(rgb).convert("L").save(folder / "grey.png")
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(folder / "grey-alpha.png")
    return sorted(folder.iterdir())


def test_the_api_reads_pil_images_as_the_cli_reads_their_files(ae, tmp_path):
    """Codec.encode(Image.open(f)) against the latent that `autoenc encode f` writes (its own file reading), and the
    reading itself against what each file shows: transparency over white, EXIF turned, 16 bits scaled."""
    files = odd_pictures(tmp_path / "in")
    run_cli("encode", *files, "-o", tmp_path / "lat/")
    for f in files:
        assert np.array_equal(ae.encode(Image.open(f)), np.load(tmp_path / "lat" / f"{f.stem}.npy")), f.name
        if f.name != "grey.png":  # the others are read otherwise than by convert("RGB"): the case is real
            assert not np.array_equal(ae.encode(np.asarray(Image.open(f).convert("RGB"))), ae.encode(Image.open(f))), f.name
    z = ae.encode(Image.open(files[[f.name for f in files].index("rotated.jpg")]))
    assert z.shape[1:] == (2, 4)  # turned as shown: 32 rows, 64 columns ...
    assert json.loads((tmp_path / "lat" / "rotated.npy.json").read_text())["original_size"] == [64, 32]  # ... as the CLI saw it
    alpha = np.asarray(to_rgb(Image.open(files[[f.name for f in files].index("rgba.png")])))
    assert alpha[0, 0].tolist() == [255, 255, 255]  # the first pixel, fully transparent: white, not black
    deep = np.asarray(to_rgb(Image.open(files[[f.name for f in files].index("deep.png")])))
    assert int(deep.max()) > 200  # 16-bit levels scaled to 8 bits, not clipped from 0..65535


def test_a_picture_is_padded_by_mirroring(ae):
    """As the API's doc says: 70 x 90 pixels are encoded as the 80 x 96 picture that mirrors them past their edges."""
    pixels = photo_like(np.random.default_rng(6), 96)[:70, :90]
    mirrored = np.pad(pixels, ((0, 10), (0, 6), (0, 0)), mode="reflect")
    assert np.array_equal(ae.encode(pixels), ae.encode(mirrored))


def test_arrays_other_than_h_w_3_uint8_are_refused(ae):
    for bad in (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8), np.uint8)):
        with pytest.raises(autoenc_cli.AutoencError, match="H x W x 3 uint8"):
            ae.encode(bad)
