"""`autoenc info` on weights, training states and latents; the layer table and its page in docs/."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from autoenc_cli.model.architecture import layer_table, markdown_table
from autoenc_cli.training.checkpoint import save_state
from autoenc_cli.errors import AutoencError
from autoenc_cli.cli.info import describe
from autoenc_cli.codec.latentfile import save_latent
from autoenc_cli.model.autoencoder import Autoencoder
from autoenc_cli.model.weights import fingerprint, save_weights

DOCS = Path(__file__).resolve().parent.parent / "docs"
PROVENANCE = {"data": "/data/tiny-imagenet-200", "steps": 1234, "date": "2026-01-02T03:04:05+00:00",
              "autoenc_version": "0.1.0", "val_psnr": 21.5}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("w") / "model.safetensors"
    torch.manual_seed(0)
    save_weights(Autoencoder(1), path, PROVENANCE)
    return path


def test_info_on_weights_shows_config_parameters_and_provenance(weights):
    proc = run_cli("info", weights, "--layers")
    text = proc.stdout
    assert "600,131 parameters" in text and "channel multiplier 1" in text and "v/64-2" in text
    for value in ("/data/tiny-imagenet-200", "1234", "2026-01-02T03:04:05+00:00", "0.1.0", "21.5"):
        assert value in text
    assert fingerprint(weights)["sha256"] in text
    assert "depth-to-space x2" in text and "4x4x128" in text  # --layers


@pytest.mark.slow
def test_info_on_a_latent_shows_shape_dtype_size_and_weights(weights, tmp_path):
    z = np.abs(np.random.default_rng(0).normal(size=(128, 5, 7))).astype(np.float32)
    save_latent(tmp_path / "z.npy", z, (100, 70), "int8", weights=fingerprint(weights))
    for target in (tmp_path / "z.npy", tmp_path / "z.npy.json"):  # the sidecar stands for its latent
        text = run_cli("info", target).stdout
        assert "(128, 5, 7)" in text and "int8" in text and "100x70" in text and "padded to 112x80" in text
        assert "model.safetensors" in text and fingerprint(weights)["sha256"] in text


def test_info_says_which_weights_decode_a_latent(weights, tmp_path):
    """A latent names the weights that encoded it: info says those decode it, not the bundled ones (decode would warn)."""
    from autoenc_cli.model.weights import default_weights_path
    z = np.zeros((128, 2, 2), np.float32)
    save_latent(tmp_path / "other.npy", z, (32, 32), weights=fingerprint(weights))
    save_latent(tmp_path / "bundled.npy", z, (32, 32), weights=fingerprint(default_weights_path()))
    save_latent(tmp_path / "unnamed.npy", z, (32, 32))
    said = {name: " ".join(describe_text(tmp_path / f"{name}.npy").split()) for name in ("other", "bundled", "unnamed")}
    assert "decodes with the weights that encoded it, model.safetensors" in said["other"], said["other"]
    assert "decode -w" in said["other"] and "decodes with the bundled" not in said["other"]
    assert "decodes with the bundled weights, which encoded it" in said["bundled"], said["bundled"]
    assert "such as the bundled ones; which weights encoded it is not recorded" in said["unnamed"], said["unnamed"]


def test_info_written_to_a_file_or_a_pipe_has_no_padding(weights, tmp_path):
    """Rich pads each cell to its column: no line of info's output ends in spaces when it is not a terminal."""
    save_latent(tmp_path / "z.npy", np.zeros((128, 2, 2), np.float32), (32, 32), weights=fingerprint(weights))
    for target in (weights, tmp_path / "z.npy"):
        text = run_cli("info", target, env={"COLUMNS": "80"}).stdout
        assert text.count("\n") > 5 and not [line for line in text.splitlines() if line.endswith(" ")], text


def test_info_on_a_plain_npy_and_a_training_state(tmp_path):
    np.save(tmp_path / "old.npy", np.zeros((128, 4, 4), np.float32))
    text = str(describe_text(tmp_path / "old.npy"))
    assert "float32" in text and "64x64" in text and "no sidecar" in text
    model = Autoencoder(1)
    save_state(tmp_path / "state.safetensors", model, torch.optim.Adam(model.parameters()),
               {"step": 42, "config": {"lr": 0.002, "batch_size": 64}, "elapsed_s": 10.0})
    text = describe_text(tmp_path / "state.safetensors")
    assert "training state" in text and "42" in text and "batch_size" in text


def describe_text(path) -> str:
    from rich.console import Console
    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(describe(path))
    return console.export_text()


@pytest.mark.parametrize("content", [b"hello, not a model", b"", b"\x00" * 64])
def test_info_on_anything_else_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "thing.bin"
    path.write_bytes(content)
    proc = run_cli("info", path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "thing.bin" in proc.stderr


def test_info_errors_name_the_problem(tmp_path):
    with pytest.raises(AutoencError, match="no such file"):
        describe(tmp_path / "missing.npy")
    with pytest.raises(AutoencError, match="is a directory"):
        describe(tmp_path)
    from safetensors.numpy import save_file
    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(AutoencError, match="without autoenc metadata"):
        describe(tmp_path / "other.safetensors")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AutoencError, match="unpickling"):
        describe(tmp_path / "obj.npy")


def test_layer_table_matches_the_seed():
    rows = layer_table(1)
    assert sum(r.params for r in rows) == 600_131
    assert sum(r.macs for r in rows) == 168_787_968  # the seed's ~168.8 million per 64x64 picture
    latent = [r for r in rows if r.part == "latent"]
    assert len(latent) == 1 and latent[0].shape == (4, 4, 128)
    assert rows[-1].shape == (64, 64, 3)
    assert sum(r.params for r in layer_table(2)) == sum(p.numel() for p in Autoencoder(2).parameters())


def test_architecture_page_matches_the_code():
    page = (DOCS / "architecture.md").read_text()
    assert markdown_table(layer_table(1)) in page, "run: python docs/make_architecture.py"
    assert (DOCS / "architecture.png").is_file()
