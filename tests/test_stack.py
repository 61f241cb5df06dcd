"""encode --stack: a whole dataset's latents in one (N, C, h, w) .npy with its paths, readable by numpy alone."""

import json

import numpy as np
from conftest import photo_like, write_image
from typer.testing import CliRunner

from autoenc_cli.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


def pictures(folder, count, size=64, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(count):
        write_image(folder / f"p{i}.png", photo_like(rng, size))
    return folder


def test_a_folder_and_a_file_stack_into_one_array_whose_rows_are_the_single_latents(tmp_path):
    folder = pictures(tmp_path / "data", 5)
    (folder / "broken.png").write_bytes(b"not a picture")
    extra = pictures(tmp_path / "more", 1, seed=1) / "p0.png"
    result = invoke("encode", folder, extra, "--stack", tmp_path / "f.npy", "--dtype", "float16")
    assert result.exit_code == 1, result.output  # the others are stacked; the skipped one is an error at the end
    z = np.load(tmp_path / "f.npy")  # numpy alone
    meta = json.loads((tmp_path / "f.npy.json").read_text())
    assert z.shape == (6, 128, 4, 4) and z.dtype == np.float16 and len(meta["paths"]) == 6
    assert meta["skipped"] == [str(folder / "broken.png")] and "skipped 1 of 7 pictures, unreadable" in result.output
    assert "broken.png: not an image" in result.output
    single = tmp_path / "one.npy"
    assert invoke("encode", extra, "-o", single).exit_code == 0
    row = meta["paths"].index(str(extra))
    assert np.allclose(z[row].astype(np.float32), np.load(single), rtol=2e-3, atol=1e-3)  # float16 rounding
    assert not list(tmp_path.glob(".*.tmp"))


def test_pictures_of_different_sizes_need_resize(tmp_path):
    folder = pictures(tmp_path / "data", 2)
    write_image(folder / "wide.png", np.tile(photo_like(np.random.default_rng(2), 64), (1, 2, 1)))
    result = invoke("encode", folder, "--stack", tmp_path / "f.npy")
    assert result.exit_code == 1 and "give --resize N" in result.output and not (tmp_path / "f.npy").exists()
    resized = invoke("encode", folder, "--stack", tmp_path / "f.npy", "--resize", 32)
    assert resized.exit_code == 0 and np.load(tmp_path / "f.npy").shape == (3, 128, 2, 2)


def test_stack_refuses_int8_and_an_output_beside_it(tmp_path):
    folder = pictures(tmp_path / "data", 1)
    assert "int8 scales are per latent" in invoke("encode", folder, "--stack", tmp_path / "f.npy", "--dtype", "int8").output
    assert "give one of them" in invoke("encode", folder, "--stack", tmp_path / "f.npy", "-o", tmp_path / "x.npy").output
    assert "--resize must be between 1 and 16384 (got 0)" in invoke("encode", folder, "--stack", tmp_path / "f.npy", "--resize", 0).output


def test_pictures_per_pass_follow_max_memory():
    from autoenc_cli.model.autoencoder import Autoencoder
    from autoenc_cli.codec.stack import BATCH_PIXELS, pictures_per_pass
    model = Autoencoder(1)
    roomy, tight = pictures_per_pass(model, (64, 64), 4096), pictures_per_pass(model, (64, 64), 64)
    assert roomy == BATCH_PIXELS // 64**2 and 1 < tight < roomy / 8  # a sixty-fourth of the memory, far fewer at once
    assert pictures_per_pass(model, (4096, 4096), 64) == 1  # one picture needs tiles of its own
