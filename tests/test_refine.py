"""Refinement (`--refine STEPS`, codec/refine.py): better latents for the same decoder, exact in tiles, recorded in
the sidecar, the same bytes twice, and refused where it means nothing."""

import hashlib
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import photo_like, run_cli, write_image
from terminal import start_in_terminal

from autoenc_cli.api import load
from autoenc_cli.codec.encoding import pad_to_multiple
from autoenc_cli.codec.latentfile import load_latent
from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.codec.refine import refine, refine_plan
from autoenc_cli.codec.tiles import decode_tiled, encode_tiled, spans
from autoenc_cli.model.autoencoder import DOWNSCALE


@pytest.fixture(scope="module")
def codec():
    return load()


def textured(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like picture with detail at several scales (a smooth one leaves refinement little to do)."""
    big = np.asarray(photo_like(rng, max(height, width)))[:height, :width].astype(np.float64)
    y, x = np.mgrid[0:height, 0:width]
    stripes = 40 * np.sin(x / 3.0 + rng.uniform(0, 6)) * np.cos(y / 5.0)
    return np.clip(big + stripes[..., None] + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(psnr_per_image(a[None], b[None])[0])


def refined_latent(codec, pixels: np.ndarray, steps: int, max_memory: float | None):
    padded = torch.from_numpy(pad_to_multiple(pixels)).permute(2, 0, 1)[None]
    start = torch.from_numpy(encode_tiled(codec.module, padded, None))[None]
    size = (pixels.shape[1], pixels.shape[0])
    return refine(codec.module, padded, start, steps, size, max_memory)


def test_refinement_improves_a_picture_and_zero_steps_is_the_one_pass(codec):
    pixels = textured(np.random.default_rng(0), 72, 100)  # not multiples of 16: the padding does not count
    one_pass = codec.reconstruct(pixels)
    assert np.array_equal(codec.reconstruct(pixels, refine=0), one_pass)
    refined = codec.reconstruct(pixels, refine=10)
    assert refined.shape == pixels.shape
    assert psnr(pixels, refined) > psnr(pixels, one_pass) + 0.3


def test_tiled_refinement_is_the_one_pass_refinement_without_seams(codec):
    pixels = textured(np.random.default_rng(1), 160, 192)  # 10 x 12 cells
    assert refine_plan(codec.module, (10, 12), None, "fp32").window == (10, 12)  # one window at the default budget
    small = 120  # MB: windows of 11 columns, 4 of context on each side: cores of 3
    tile = refine_plan(codec.module, (10, 12), small, "fp32")
    assert tile.window[1] < 12 and tile.window[1] - 2 * tile.margin == 3, tile
    whole, tiled = refined_latent(codec, pixels, 4, None), refined_latent(codec, pixels, 4, small)
    out_whole, out_tiled = decode_tiled(codec.module, whole, None), decode_tiled(codec.module, tiled, None)
    assert abs(psnr(pixels, out_tiled) - psnr(pixels, out_whole)) < 0.05
    assert np.abs(out_tiled.astype(int) - out_whole).max() <= 2
    # no seams: the error along the cores' boundaries is no larger than inside them
    error = np.abs(out_tiled.astype(np.float64) - pixels).mean(2)
    edges = np.zeros(pixels.shape[1], bool)
    for start, core_start, _ in spans(12, tile.window[1], tile.margin)[1:]:
        edges[core_start * DOWNSCALE - 2:core_start * DOWNSCALE + 2] = True
    assert edges.any() and error[:, edges].mean() <= error[:, ~edges].mean() * 1.1


def test_a_batch_of_pictures_refines_each_as_if_alone(codec):
    rng = np.random.default_rng(2)
    batch = torch.from_numpy(np.stack([textured(rng, 64, 64) for _ in range(3)])).permute(0, 3, 1, 2)
    together = codec.reconstruct(batch, refine=4)  # uint8 in, uint8 out
    alone = torch.cat([codec.reconstruct(batch[i:i + 1], refine=4) for i in range(3)])
    # Adam turns float noise in gradients near zero into steps of the rate: the latents may differ there, the
    # pictures by no more than a level
    assert (together.int() - alone.int()).abs().max() <= 1


def test_encode_refine_writes_an_ordinary_latent_that_records_it_and_decodes_better(tmp_path, codec):
    source = write_image(tmp_path / "photo.png", textured(np.random.default_rng(3), 80, 112), format="PNG")
    run_cli("encode", source, "-o", tmp_path / "plain.npy")
    run_cli("encode", source, "-o", tmp_path / "zero.npy", "--refine", 0)
    assert (tmp_path / "zero.npy").read_bytes() == (tmp_path / "plain.npy").read_bytes()
    assert "refine" not in json.loads((tmp_path / "zero.npy.json").read_text())
    run_cli("encode", source, "-o", tmp_path / "better.npy", "--refine", 8)
    run_cli("encode", source, "-o", tmp_path / "again.npy", "--refine", 8)
    assert (tmp_path / "again.npy").read_bytes() == (tmp_path / "better.npy").read_bytes()  # the same bytes twice
    assert json.loads((tmp_path / "better.npy.json").read_text())["refine"]["steps"] == 8
    assert "refined 8 steps" in run_cli("info", tmp_path / "better.npy").stdout
    scores = {}
    for name in ("plain", "better"):
        run_cli("decode", tmp_path / f"{name}.npy", "-o", tmp_path / f"{name}.png")
        decoded = np.asarray(Image.open(tmp_path / f"{name}.png"))
        scores[name] = psnr(np.asarray(Image.open(source)), decoded)
    assert scores["better"] > scores["plain"] + 0.3, scores


def test_the_api_writes_what_the_command_writes(tmp_path, codec):
    source = write_image(tmp_path / "photo.png", textured(np.random.default_rng(4), 64, 80), format="PNG")
    run_cli("encode", source, "-o", tmp_path / "cli.npy", "--refine", 3, "--dtype", "int8")
    codec.encode_file(source, tmp_path / "api.npy", "int8", refine=3)
    assert (tmp_path / "api.npy").read_bytes() == (tmp_path / "cli.npy").read_bytes()
    cli_side = json.loads((tmp_path / "cli.npy.json").read_text())
    assert cli_side == json.loads((tmp_path / "api.npy.json").read_text())


def test_int8_keeps_most_of_the_gain(tmp_path, codec):
    source = write_image(tmp_path / "photo.png", textured(np.random.default_rng(5), 96, 96), format="PNG")
    original = np.asarray(Image.open(source))
    gains = {}
    for dtype in ("float32", "int8"):
        for steps in (0, 10):
            target = tmp_path / f"{dtype}-{steps}.npy"
            codec.encode_file(source, target, dtype, refine=steps)
            z = load_latent(target, codec.latent_channels).values
            gains[dtype, steps] = psnr(original, np.asarray(codec.decode(z, size=(96, 96))))
    float_gain = gains["float32", 10] - gains["float32", 0]
    int8_gain = gains["int8", 10] - gains["float32", 0]
    assert float_gain > 0.3 and int8_gain >= 0.9 * float_gain, gains


def test_stack_refines_and_records_it(tmp_path):
    rng = np.random.default_rng(6)
    files = [write_image(tmp_path / "in" / f"p{i}.png", textured(rng, 64, 64), format="PNG") for i in range(3)]
    run_cli("encode", *files, "--stack", tmp_path / "plain.npy")
    run_cli("encode", *files, "--stack", tmp_path / "refined.npy", "--refine", 4)
    side = json.loads((tmp_path / "refined.npy.json").read_text())
    assert side["refine"]["steps"] == 4 and "refine" not in json.loads((tmp_path / "plain.npy.json").read_text())
    assert not np.array_equal(np.load(tmp_path / "plain.npy"), np.load(tmp_path / "refined.npy"))


def test_eval_refine_scores_higher_on_crops_and_whole_pictures_and_shows_the_one_pass_beside(tmp_path):
    """eval --refine gives both figures a user weighs: the one pass (the figures of eval without --refine) and the
    refined latents', in --json and in the table."""
    rng = np.random.default_rng(7)
    for i in range(4):
        write_image(tmp_path / "crops" / f"c{i}.png", textured(rng, 64, 64), format="PNG")
    write_image(tmp_path / "whole" / "w.png", textured(rng, 90, 130), format="PNG")
    for folder, extra in (("crops", []), ("whole", ["--whole"])):
        plain = json.loads(run_cli("eval", tmp_path / folder, "--json", *extra).stdout)
        refined = json.loads(run_cli("eval", tmp_path / folder, "--json", "--refine", 6, *extra).stdout)
        assert refined["refine"] == 6 and plain["refine"] == 0 and "one_pass" not in plain
        assert refined["psnr"] > plain["psnr"] + 0.3, (folder, plain["psnr"], refined["psnr"])
        for measure in ("psnr", "ssim", "mse"):
            assert refined["one_pass"][measure] == pytest.approx(plain[measure], rel=1e-9), (folder, measure)
    per_picture = refined["per_picture"][0]
    assert per_picture["one_pass_psnr"] == pytest.approx(plain["per_picture"][0]["psnr"], rel=1e-9)
    table = run_cli("eval", tmp_path / "crops", "--refine", 2).stdout
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if line.count("│") > 2}
    assert "one pass" in rows and "refined 2 steps" in rows["model"], table
    assert "one pass" not in run_cli("eval", tmp_path / "crops").stdout


def test_a_refinement_shows_its_bar_before_the_first_step(tmp_path, codec):
    """progress(0, steps) comes once the windows are planned, before the first step (which may take minutes)."""
    source = write_image(tmp_path / "photo.png", textured(np.random.default_rng(10), 48, 64), format="PNG")
    calls = []
    codec.encode_file(source, tmp_path / "z.npy", refine=3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_a_budget_that_cuts_a_step_into_many_windows_is_said_once(tmp_path, codec):
    """--max-memory 120 cuts each step of a 192x160 picture into 4 windows of 11 columns for cores of 3: about 3.7x
    the work of one window. Said once for a folder of such pictures, with the budget that holds one whole; not said
    at that budget nor at the default."""
    rng = np.random.default_rng(11)
    for i in range(2):
        write_image(tmp_path / "in" / f"p{i}.png", textured(rng, 160, 192), format="PNG")
    proc = run_cli("encode", tmp_path / "in", "-o", tmp_path / "small/", "--refine", 1, "--max-memory", 120)
    said = [line for line in proc.stderr.splitlines() if "windows" in line]
    assert len(said) == 1, proc.stderr
    found = re.fullmatch(r"warning: --max-memory 120 MB cuts each refinement step of a 192x160 picture into 4 windows, "
                         r"about 3\.7x slower than one window; --max-memory (\d+) holds it in one", said[0])
    assert found, said[0]
    enough = int(found.group(1))
    assert refine_plan(codec.module, (10, 12), enough, "fp32").window == (10, 12)
    assert refine_plan(codec.module, (10, 12), enough - 1, "fp32").window != (10, 12)  # the least that does
    for budget in ([], ["--max-memory", enough]):
        proc = run_cli("encode", tmp_path / "in" / "p0.png", "-o", tmp_path / f"z{len(budget)}.npy", "--refine", 1, *budget)
        assert "windows" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("args, message", [
    (["encode", "PIC", "--refine", "-1"], "--refine"),
    (["encode", "PIC", "--refine", "100001"], "--refine"),
    (["encode", "PIC", "--refine", "two"], "--refine"),
    (["decode", "PIC", "--refine", "5"], "No such option: --refine"),
    (["eval", "DIR", "--rd", "--refine", "5"], "--refine refines each latent"),
])
def test_bad_refine_values_get_one_line(tmp_path, args, message):
    pic = write_image(tmp_path / "d" / "p.png", textured(np.random.default_rng(8), 64, 64), format="PNG")
    args = [str(pic) if a == "PIC" else str(pic.parent) if a == "DIR" else a for a in args]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = run_cli(*args, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_api_refusals(codec):
    with pytest.raises(TypeError, match="whole number of steps"):
        codec.encode(np.zeros((32, 32, 3), np.uint8), refine=2.5)
    with pytest.raises(Exception, match="refine=-3: give 0"):
        codec.reconstruct(np.zeros((32, 32, 3), np.uint8), refine=-3)


@pytest.mark.slow
def test_a_refinement_in_a_terminal_draws_its_bar_and_ctrl_c_leaves_no_file(tmp_path):
    source = write_image(tmp_path / "photo.png", textured(np.random.default_rng(9), 256, 256), format="PNG")
    session = start_in_terminal(["encode", source, "-o", tmp_path / "z.npy", "--refine", 10000])
    assert session.wait_for("refining photo.png", timeout=120), session.text
    session.type(b"\x03")
    assert session.finish(timeout=60) == 130, session.text
    assert "Traceback" not in session.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]  # no latent, no sidecar, no temporary file
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    session = start_in_terminal(["encode", source, "-o", tmp_path / "z.npy", "--refine", 3])
    assert session.finish(timeout=120) == 0, session.text
    assert "━" in session.text and "3/3" in session.text
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest and (tmp_path / "z.npy.json").is_file()
