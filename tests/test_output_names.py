"""An output's name and its bytes agree: a latent is a .npy, decode writes the picture format its name's suffix says
(saying the quality of a lossy one), and a name that says another format is refused in one line before any work.
A latent given back to encode is named as such at once."""

import io

import numpy as np
import pytest
from conftest import photo_like, run_cli, write_image
from PIL import Image

import autoenc_cli
from autoenc_cli.codec.inputs import JPEG_QUALITY, WEBP_QUALITY


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("names")
    write_image(d / "x.jpg", photo_like(np.random.default_rng(0), 48)[:40, :44], format="JPEG")
    run_cli("encode", d / "x.jpg", "-o", d / "x.npy")
    return d


def one_line_refusal(proc, *words):
    text = proc.stderr.strip()
    assert proc.returncode == 1 and "\n" not in text and "Traceback" not in text, text
    for w in words:
        assert w in text, (w, text)


SUFFIXES = [(".png", "PNG", ""), (".jpg", "JPEG", f", JPEG quality {JPEG_QUALITY}"),
            (".JPEG", "JPEG", f", JPEG quality {JPEG_QUALITY}"), (".webp", "WEBP", f", WebP quality {WEBP_QUALITY}"),
            (".tif", "TIFF", ""), (".tiff", "TIFF", "")]


@pytest.mark.parametrize("suffix, fmt, said", SUFFIXES, ids=[s for s, _, _ in SUFFIXES])
def test_decode_writes_the_format_its_output_is_named(folder, tmp_path, suffix, fmt, said):
    target = tmp_path / f"out{suffix}"
    proc = run_cli("decode", folder / "x.npy", "-o", target)
    with Image.open(target) as img:
        assert img.format == fmt and img.size == (44, 40)
    assert proc.stdout.strip().endswith(f"{target} 44x40{said}"), proc.stdout


def test_the_api_writes_the_format_its_image_is_named_as_decode_does(folder, tmp_path):
    run_cli("decode", folder / "x.npy", "-o", tmp_path / "shell.jpg")
    autoenc_cli.load().decode_file(folder / "x.npy", tmp_path / "python.jpg")
    assert (tmp_path / "python.jpg").read_bytes() == (tmp_path / "shell.jpg").read_bytes()
    assert Image.open(io.BytesIO((tmp_path / "python.jpg").read_bytes())).format == "JPEG"
    assert f"quality {JPEG_QUALITY}" in autoenc_cli.Codec.decode_file.__doc__
    assert f"quality {JPEG_QUALITY}" in " ".join(run_cli("decode", "--help").stdout.split())


@pytest.mark.parametrize("name, words", [("out.bmp", [".bmp is not a picture format decode writes"]),
                                         ("out", ["no suffix to name its format"]),
                                         ("out.npy", [".npy is not a picture format"])])
def test_decode_refuses_a_name_of_no_format_it_writes_before_any_work(folder, tmp_path, name, words):
    proc = run_cli("decode", folder / "x.npy", "-o", tmp_path / name, check=False)
    one_line_refusal(proc, name, *words, "give -o a name ending in .png, .jpg, .webp or .tif")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, words", [
    (["-o", "out.png"], ["out.png: a latent is a .npy file", "give -o a name ending in .npy, such as out.npy"]),
    (["-o", "out"], ["out: a latent is a .npy file", "such as out.npy"]),
    (["--stack", "all.png"], ["all.png: a stack of latents is a .npy file", "give --stack a name ending in .npy"]),
], ids=["png", "no-suffix", "stack"])
def test_encode_refuses_a_latent_named_as_something_else(folder, tmp_path, args, words):
    proc = run_cli("encode", folder / "x.jpg", *args, check=False, cwd=tmp_path)
    one_line_refusal(proc, *words)
    assert list(tmp_path.iterdir()) == []


def test_outputs_named_as_another_format_are_refused_by_every_command(folder, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("step,train_loss\n1,0.5\n2,0.4\n")
    one_line_refusal(run_cli("plot", run, "-o", tmp_path / "curve.jpg", check=False), "curve.jpg: the curve is a PNG",
                     "give -o a name ending in .png")
    pictures = tmp_path / "pictures"
    write_image(pictures / "a.png", photo_like(np.random.default_rng(1)), format="PNG")
    one_line_refusal(run_cli("eval", pictures, "--worst-png", tmp_path / "worst.jpg", check=False), "worst.jpg",
                     "give --worst-png a name ending in .png")
    one_line_refusal(run_cli("eval", pictures, "--rd", "--rd-png", tmp_path / "rd.webp", check=False), "rd.webp",
                     "give --rd-png a name ending in .png")
    assert not (tmp_path / "curve.jpg").exists() and not (tmp_path / "worst.jpg").exists()


def test_export_refuses_an_onnx_model_named_as_something_else(tmp_path):
    pytest.importorskip("onnx")
    one_line_refusal(run_cli("export", "-o", tmp_path / "model.png", check=False), "model.png: an exported network is an ONNX file")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--refine", "10"], ["-o", "other.npy", "--refine", "10"], ["-o", "x.npy"]],
                         ids=["default-output", "another-output", "itself"])
def test_a_latent_given_to_encode_is_named_at_once(folder, args):
    """`encode x.npy --refine 10` said "exists; give -o x.npy", which said "is also an input"; now the first answer."""
    proc = run_cli("encode", "x.npy", *args, check=False, cwd=folder)
    one_line_refusal(proc, "x.npy: is a latent, not a picture to encode", "`autoenc decode` turns it back into a picture",
                     "encode its original picture with --refine STEPS")
    assert not (folder / "other.npy").exists()
