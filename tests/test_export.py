"""autoenc export: ONNX models that give what autoenc's own encode and decode give, at any batch and size.

Tolerances (float32 both sides, different convolution kernels): latents within 1e-4 of the largest |latent|
(measured ~1e-6 on the bundled weights); [0, 1] pixels within 1e-4 of PyTorch's; 8-bit pictures within one
level of codec's, and that on under 0.1% of the values (a float landing on the other side of a .5).
"""

import json
import sys

import numpy as np
import pytest
import torch
from conftest import photo_like
from typer.testing import CliRunner

from autoenc_cli.cli.app import app
from autoenc_cli.codec.encoding import decode_latents, encode_images, reconstruct
from autoenc_cli.codec.export import RgbGraph, export_onnx
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.model.weights import fingerprint, load_model, save_weights

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

SIZES = [(1, 64, 64), (3, 48, 80)]  # (batch, height, width): square and not, one picture and several
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


def random_weights(path, color="rgb", seed=0):
    torch.manual_seed(seed)
    model = Autoencoder(1)
    init_weights(model)
    save_weights(model, path, provenance={"data": "random init, for tests", "steps": 0}, color=color)
    return path


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def pictures(batch, height, width, seed=0):
    rng = np.random.default_rng(seed)
    side = max(height, width)
    return np.stack([photo_like(rng, side)[:height, :width] for _ in range(batch)])


def as_unit_floats(pixels):
    """N x H x W x 3 bytes -> the exported models' input: N x 3 x H x W float32 in [0, 1]."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32) / 255


def as_bytes(unit):
    return np.round(unit * 255).astype(np.uint8).transpose(0, 2, 3, 1)


def assert_same_picture(got, expected):
    levels = np.abs(got.astype(int) - expected.astype(int))
    assert levels.max() <= 1 and (levels > 0).mean() < 1e-3, (levels.max(), (levels > 0).mean())


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """Random weights, their model, and the encoder and decoder exported from them."""
    folder = tmp_path_factory.mktemp("export")
    weights = random_weights(folder / "model.safetensors")
    parts = {part: export_onnx(weights, folder / f"{part}.onnx", part) for part in ("encoder", "decoder")}
    return weights, load_model(weights)[0], parts


def test_encoder_gives_codecs_latents_at_any_batch_and_size(rgb):
    _, model, parts = rgb
    assert parts["encoder"].signature == "pixels [batch, 3, height, width] -> latent [batch, 128, height/16, width/16]"
    encoder = session(parts["encoder"].path)
    for batch, height, width in SIZES:
        pixels = pictures(batch, height, width)
        latent = encoder.run(None, {"pixels": as_unit_floats(pixels)})[0]
        expected = encode_images(model, pixels)
        assert latent.shape == (batch, 128, height // 16, width // 16) == expected.shape
        assert np.abs(latent - expected).max() <= 1e-4 * np.abs(expected).max()
    with pytest.raises(Exception, match="pixels_height_and_width_must_be_multiples_of_16"):  # not a silently odd latent
        encoder.run(None, {"pixels": np.zeros((1, 3, 50, 64), np.float32)})


def test_decoder_gives_codecs_pictures_at_any_batch_and_size(rgb):
    _, model, parts = rgb
    decoder = session(parts["decoder"].path)
    unit_pixels = RgbGraph(model, "decoder").eval()
    for batch, height, width in SIZES:
        latent = encode_images(model, pictures(batch, height, width, seed=1))
        got = decoder.run(None, {"latent": latent})[0]
        assert got.shape == (batch, 3, height, width) and got.min() >= 0 and got.max() <= 1
        with torch.inference_mode():
            assert np.abs(got - unit_pixels(torch.from_numpy(latent)).numpy()).max() <= 1e-4
        expected = decode_latents(model, latent)
        assert (expected % 255 != 0).mean() > 0.5  # mostly not clipped: the comparison means something
        assert_same_picture(as_bytes(got), expected)


def test_metadata_names_weights_pixels_and_part(rgb):
    weights, _, parts = rgb
    meta = {p.key: p.value for p in onnx.load(parts["decoder"].path).metadata_props}
    assert meta["format"] == "autoenc-onnx" and meta["part"] == "decoder" and meta["autoenc_version"]
    assert "sRGB in [0, 1]" in meta["pixels"] and "v/255" in meta["pixels"] and meta["latent"].startswith("float32 N x 128 x H/16 x W/16")
    assert json.loads(meta["weights"]) == fingerprint(weights)
    config = json.loads(meta["weights_config"])
    assert config["channel_multiplier"] == "1" and config["color"] == "rgb" and config["format"] == "autoenc-weights"
    assert json.loads(meta["provenance"]) == {"data": "random init, for tests", "steps": 0}
    assert meta["signature"] == parts["decoder"].signature


def test_cli_exports_the_whole_autoencoder(rgb, tmp_path):
    weights, model, _ = rgb
    target = tmp_path / "whole.onnx"
    result = invoke("export", weights, "-o", target, "--part", "autoencoder")
    assert result.exit_code == 0, result.output
    size_kb = f"{target.stat().st_size / 1024:,.0f} KB"
    assert (f"wrote {target}: autoencoder, pixels [batch, 3, height, width] -> reconstruction [batch, 3, height, width], "
            f"{size_kb}") in " ".join(result.output.split())
    assert not list(tmp_path.glob(".*.tmp"))
    shown = " ".join(invoke("info", target).output.split())
    assert "input pixels [batch, 3, height, width]" in shown and "output reconstruction [batch, 3, height, width]" in shown
    assert "part autoencoder" in shown and weights.name in shown
    autoencoder = session(target)
    for batch, height, width in [(1, 128, 32), (3, 48, 80)]:
        pixels = pictures(batch, height, width, seed=2)
        got = autoencoder.run(None, {"pixels": as_unit_floats(pixels)})[0]
        assert_same_picture(as_bytes(got), reconstruct(model, pixels))


@pytest.mark.slow
def test_lab_model_speaks_rgb_outside(tmp_path):
    """A model trained in LAB exports with its conversions inside: bytes in RGB, as autoenc's own reconstruct."""
    weights = random_weights(tmp_path / "lab.safetensors", color="lab", seed=1)
    model = load_model(weights)[0]
    exported = export_onnx(weights, tmp_path / "lab.onnx", "autoencoder")
    autoencoder = session(exported.path)
    for batch, height, width in SIZES:
        pixels = pictures(batch, height, width, seed=3)
        got = autoencoder.run(None, {"pixels": as_unit_floats(pixels)})[0]
        with torch.inference_mode():
            assert np.abs(got - RgbGraph(model, "autoencoder").eval()(torch.from_numpy(as_unit_floats(pixels))).numpy()).max() <= 1e-4
        assert_same_picture(as_bytes(got), reconstruct(model, pixels))
    assert json.loads({p.key: p.value for p in onnx.load(exported.path).metadata_props}["weights_config"])["color"] == "lab"


def test_cli_without_onnx_says_how_to_get_it_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now raises ImportError
    result = invoke("export", random_weights(tmp_path / "model.safetensors"), "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == ["error: autoenc export needs onnx and onnxscript: pip install 'autoenc[onnx]' (in a clone "
                                                    "of autoenc: pip install -e '.[onnx]')"]
    assert not (tmp_path / "m.onnx").exists()


def test_cli_never_writes_over_an_input_a_folder_or_a_file_not_named(tmp_path, monkeypatch):
    weights = random_weights(tmp_path / "model.safetensors")
    before = weights.read_bytes()
    over_input = invoke("export", weights, "-o", weights)
    assert over_input.exit_code == 1 and "is also an input; refusing to overwrite it" in over_input.output
    assert weights.read_bytes() == before
    into_folder = invoke("export", weights, "-o", tmp_path)
    assert into_folder.exit_code == 1 and "is a folder; give -o a file name" in into_folder.output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.encoder.onnx").write_text("the user's own file")  # the default name for --part encoder
    unnamed = invoke("export", weights, "--part", "encoder")
    assert unnamed.exit_code == 1 and "model.encoder.onnx: exists; not replacing a file you did not name" in unnamed.output
    assert (tmp_path / "model.encoder.onnx").read_text() == "the user's own file"
    wrong_part = invoke("export", weights, "--part", "middle")
    assert wrong_part.exit_code == 2 and "'middle' is not one of 'encoder', 'decoder', 'autoencoder'" in wrong_part.output
