"""--latent linear (issue 29): the seed's network without the ReLU after the encoder's last convolution, opt-in,
stored in the weights, and built from the file alone by every command."""

import numpy as np
import torch
from conftest import photo_like, run_cli, write_image
from test_first_hour import invoke

from autoenc_cli.model.architecture import layer_table
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.model.weights import load_model, save_weights
from autoenc_cli.training.checkpoint import state_info


def test_linear_latent_is_the_seed_network_less_one_relu_with_the_same_tensors():
    seed, linear = Autoencoder(), Autoencoder(latent="linear")
    assert seed.latent == "relu" and isinstance(seed.encoder[-1], torch.nn.ReLU)  # the default stays the seed's
    assert isinstance(linear.encoder[-1], torch.nn.Conv2d) and len(linear.encoder) == len(seed.encoder) - 1
    assert {k: v.shape for k, v in seed.state_dict().items()} == {k: v.shape for k, v in linear.state_dict().items()}
    assert sum(p.numel() for p in linear.parameters()) == 600_131
    torch.manual_seed(0)
    init_weights(linear)
    z = linear.encoder(torch.rand(2, 3, 64, 64) * 4 - 2)
    assert (z < 0).any()  # no longer clamped at 0
    rows = layer_table(latent="linear")
    assert [r.part for r in rows].count("latent") == 1
    latent_row = next(r for r in rows if r.part == "latent")
    assert "linear" in latent_row.layer and "ReLU" not in latent_row.layer
    assert "ReLU" in next(r for r in layer_table() if r.part == "latent").layer


def test_weights_remember_their_latent_and_load_as_such(tmp_path):
    torch.manual_seed(1)
    model = Autoencoder(latent="linear")
    init_weights(model)
    save_weights(model, tmp_path / "w.safetensors")
    loaded, meta = load_model(tmp_path / "w.safetensors")
    assert meta["latent"] == "linear" and loaded.latent == "linear"
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(loaded.eval()(x), model.eval()(x))


def test_train_latent_linear_and_every_command_builds_it_from_the_file(tiny_imagenet, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", tiny_imagenet, "--out", run, "--latent", "linear", "--init", "default", "--max-steps", 2,
                    "--batch-size", 4)
    assert result.exit_code == 0 and "starting a linear latent from default.safetensors's relu latent" in \
        " ".join(result.output.split()), result.output
    weights = run / "model.safetensors"
    assert load_model(weights)[1]["latent"] == "linear"
    assert state_info(run / "state.safetensors")["config"]["latent"] == "linear"
    picture = write_image(tmp_path / "p.png", photo_like(np.random.default_rng(0)), format="PNG")
    run_cli("encode", picture, "-o", tmp_path / "z.npy", "-w", weights)
    assert (np.load(tmp_path / "z.npy") < 0).any()  # the linear network encoded it
    run_cli("decode", tmp_path / "z.npy", "-o", tmp_path / "back.png", "-w", weights)
    resumed = invoke("train", tiny_imagenet, "--out", run, "--resume", "--max-steps", 3)
    assert resumed.exit_code == 0 and load_model(weights)[1]["latent"] == "linear"


def test_info_says_which_latent_a_file_has(tmp_path):
    model = Autoencoder(latent="linear")
    save_weights(model, tmp_path / "w.safetensors")
    text = " ".join(run_cli("info", tmp_path / "w.safetensors", "--layers").stdout.split())
    assert "linear (no ReLU after the last encoder convolution)" in text and "with a linear latent" in text
    assert "conv 3x3, 128, linear" in text  # the layer table's latent row


def test_a_sidecar_that_cannot_be_written_is_found_before_the_latent_is(tmp_path):
    """Never a .npy without its sidecar: a folder standing where z.npy.json goes stops the save before z.npy."""
    import pytest
    from autoenc_cli.codec.latentfile import save_latent
    from autoenc_cli.errors import AutoencError
    (tmp_path / "z.npy.json").mkdir()
    with pytest.raises(AutoencError, match="z.npy.json"):
        save_latent(tmp_path / "z.npy", np.zeros((128, 2, 2), np.float32), (32, 32))
    assert not (tmp_path / "z.npy").exists()


def test_int8_latents_are_within_half_a_step_of_their_floats(tmp_path):
    """Each channel's scale is its peak / 127 to 3 significant digits: every value comes back within half a step
    (plus the scale's rounding), and no channel is clipped."""
    from autoenc_cli.codec.latentfile import load_latent, save_latent
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((128, 3, 5)) * rng.uniform(0.01, 300, (128, 1, 1))).astype(np.float32)
    save_latent(tmp_path / "z.npy", z, (80, 48), "int8")
    back = load_latent(tmp_path / "z.npy").values
    step = np.abs(z).reshape(128, -1).max(1) / 127
    error = np.abs(back - z).reshape(128, -1).max(1)
    assert (error <= 0.5 * step * 1.01 + 127 * step * 0.005).all()  # half a step, and 3 digits' rounding of the scale


def test_int8_latents_use_the_whole_stored_range(tmp_path):
    """The int8 file spends its 255 levels: each channel's largest magnitude is stored as +-127 (a scale against 126
    would waste a level and pass the half-step test above), signed values included, and a channel of zeros stays 0."""
    from autoenc_cli.codec.latentfile import read_array, save_latent
    rng = np.random.default_rng(3)
    z = (rng.standard_normal((128, 4, 6)) * rng.uniform(0.01, 50, (128, 1, 1))).astype(np.float32)
    z[0] = 0.0
    z[1] = 2.5  # a constant channel
    z[2] = -np.abs(z[2])  # refined latents go negative: the peak may be a negative value
    save_latent(tmp_path / "z.npy", z, (96, 64), "int8")
    stored = read_array(tmp_path / "z.npy")
    peaks = np.abs(stored.astype(np.int16)).reshape(128, -1).max(1)
    assert stored.dtype == np.int8 and peaks[0] == 0 and (peaks[1:] == 127).all(), peaks
    assert stored[2].min() == -127 and stored[1].min() == 127
