"""The LAB pixel encoding: the conversion itself, training in it, and every command reading it from the weights."""

import json

import numpy as np
import pytest
import torch
from conftest import make_tiny_imagenet, photo_like, run_cli, write_image
from PIL import Image

from autoenc_cli.codec.encoding import reconstruct
from autoenc_cli.model.color import from_network, rgb_to_lab, to_network
from autoenc_cli.errors import AutoencError
from autoenc_cli.model.autoencoder import Autoencoder
from autoenc_cli.training.train import TrainConfig, train
from autoenc_cli.model.weights import load_model, provenance, save_weights


def test_rgb_lab_rgb_round_trip_stays_within_one_level():
    rng = np.random.default_rng(0)
    pixels = torch.from_numpy(rng.integers(0, 256, (200_000, 3), dtype=np.uint8)).T.reshape(1, 3, 400, 500)
    back = from_network(to_network(pixels, "lab"), "lab")
    assert (back.int() - pixels.int()).abs().max() <= 1


def test_lab_values_match_published_ones_and_fit_the_network_range():
    rgb = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0]]).T.reshape(1, 3, 5, 1)
    lab = rgb_to_lab(rgb)[0, :, :, 0].T
    expected = [[53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86], [100, 0, 0], [0, 0, 0]]
    np.testing.assert_allclose(lab.numpy(), expected, atol=0.02)
    levels = torch.tensor([*range(0, 256, 5), 255], dtype=torch.uint8)  # the cube's corners hold the extremes
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(1, 3, len(levels) ** 2, len(levels))
    x = to_network(cube, "lab")
    assert x.min() >= -2 and x.max() < 2


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    data = make_tiny_imagenet(tmp / "data", classes=2, per_class=4, val=4, corrupt=False)
    cfg = TrainConfig(data=str(data), out=str(tmp / "run"), epochs=1000, max_steps=12, batch_size=8, warmup_steps=3,
                      log_every=10, precision="fp32", color="lab", cache_dir=str(tmp / "cache"))
    return data, train(cfg, say=lambda *_: None)


def test_lab_is_recorded_in_the_weights_and_applied_on_loading(lab_run):
    _, result = lab_run
    model, meta = load_model(result.weights)
    assert meta["color"] == "lab" and provenance(meta)["color"] == "lab" and model.color == "lab"
    plain = Autoencoder()
    plain.load_state_dict(model.state_dict())  # the same network, told nothing of its colour encoding
    picture = photo_like(np.random.default_rng(1))
    pixels = torch.from_numpy(picture).permute(2, 0, 1)[None]
    with torch.no_grad():
        direct = from_network(plain(to_network(pixels, "lab")), "lab").permute(0, 2, 3, 1).numpy()
        as_rgb = from_network(plain(to_network(pixels, "rgb")), "rgb").permute(0, 2, 3, 1).numpy()
    rebuilt = reconstruct(model, picture[None])  # what encode/decode/eval do: the colour encoding the weights name
    assert np.array_equal(rebuilt, direct) and not np.array_equal(rebuilt, as_rgb)


@pytest.mark.slow
def test_eval_encode_decode_use_lab_without_a_flag(lab_run, tmp_path):
    data, result = lab_run
    proc = run_cli("eval", data, "-w", result.weights, "--json", "--worst-png", tmp_path / "worst.png")
    psnr = json.loads(proc.stdout)["psnr"]
    assert abs(psnr - result.val_psnr) < 0.05, (psnr, result.val_psnr)  # the same val images, measured in RGB
    img = write_image(tmp_path / "in.png", photo_like(np.random.default_rng(2)), format="PNG")
    run_cli("encode", img, "-o", tmp_path / "z.npy", "-w", result.weights)
    run_cli("decode", tmp_path / "z.npy", "-o", tmp_path / "out.png", "-w", result.weights)
    out = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    model, _ = load_model(result.weights)
    one_pass = reconstruct(model, np.asarray(Image.open(img))[None])[0]  # the network's own pass, in LAB
    assert out.shape == (64, 64, 3) and np.abs(out - one_pass).max() <= 1  # encode + decode give it, to a level


def test_an_unknown_colour_in_the_weights_is_refused(tmp_path):
    save_weights(Autoencoder(), tmp_path / "w.safetensors", color="xyz")
    with pytest.raises(AutoencError, match="unknown colour encoding 'xyz'"):
        load_model(tmp_path / "w.safetensors")


def test_bad_color_option_is_one_line(tmp_path):
    proc = run_cli("train", tmp_path, "--color", "hsv", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
