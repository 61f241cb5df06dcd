import pytest
import numpy as np
from conftest import photo_like, run_cli, write_image
from PIL import Image


def test_train_encode_decode_end_to_end(tiny_imagenet, tmp_path):
    run = tmp_path / "run"
    proc = run_cli("train", tiny_imagenet, "--out", run, "--max-steps", 6, "--batch-size", 4, "--cache-dir", tmp_path / "cache", process=True)
    assert "skipped 1 unreadable" in proc.stderr
    assert (run / "model.safetensors").is_file() and (run / "state.safetensors").is_file()
    assert list((run / "samples").glob("*.png"))
    assert "val_psnr" in (run / "log.csv").read_text().splitlines()[0]
    assert list((tmp_path / "cache").glob("*.npy"))

    img = write_image(tmp_path / "in.png", photo_like(np.random.default_rng(5)), format="PNG")
    proc = run_cli("encode", img, "-o", tmp_path / "z.npy", "-w", run / "model.safetensors", process=True)
    assert "model.safetensors" in proc.stderr  # says which weights were used
    z = np.load(tmp_path / "z.npy", allow_pickle=False)
    assert z.shape == (128, 4, 4) and z.dtype == np.float32

    run_cli("decode", tmp_path / "z.npy", "-o", tmp_path / "out.png", "-w", run / "model.safetensors", process=True)
    out = Image.open(tmp_path / "out.png")
    assert out.size == (64, 64) and out.mode == "RGB"


@pytest.mark.slow
def test_resume_from_cli_continues_step_count(tiny_imagenet, tmp_path):
    run = tmp_path / "run"
    run_cli("train", tiny_imagenet, "--out", run, "--max-steps", 4, "--batch-size", 4)
    proc = run_cli("train", tiny_imagenet, "--out", run, "--max-steps", 8, "--batch-size", 4, "--resume")
    assert "step 8" in proc.stdout
    steps = [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps[-1] == "8" and len(steps) == len(set(steps))


@pytest.mark.slow
def test_several_files_at_once_into_folders(tiny_imagenet, tmp_path):
    run = tmp_path / "run"
    run_cli("train", tiny_imagenet, "--out", run, "--max-steps", 2, "--batch-size", 4)
    rng = np.random.default_rng(0)
    images = [write_image(tmp_path / f"img{i}.png", photo_like(rng), format="PNG") for i in range(3)]
    run_cli("encode", *images, "-o", tmp_path / "latents", "-w", run / "model.safetensors")
    latents = sorted((tmp_path / "latents").glob("*.npy"))
    assert [p.stem for p in latents] == ["img0", "img1", "img2"]
    run_cli("decode", *latents, "-o", tmp_path / "decoded", "-w", run / "model.safetensors")
    assert sorted(p.name for p in (tmp_path / "decoded").glob("*.png")) == ["img0.png", "img1.png", "img2.png"]


def test_bad_input_is_one_line_without_traceback(tmp_path):
    proc = run_cli("encode", tmp_path / "missing.png", "-o", tmp_path / "z.npy", check=False, process=True)
    assert proc.returncode != 0
    assert "missing.png" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("train", tmp_path, "--batch-size", 0, check=False, process=True)
    assert proc.returncode != 0 and "batch-size" in proc.stderr and "Traceback" not in proc.stderr


def test_python_dash_m_works():
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "autoenc_cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "encode" in proc.stdout


@pytest.mark.parametrize("output", ["out/", None])
def test_two_inputs_of_one_name_are_refused_before_any_file_is_written(tmp_path, monkeypatch, output):
    """encode a/x.png b/x.png (into a folder, or beside the working folder): one x.npy would replace the other."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(4)
    for folder in ("a", "b"):
        write_image(tmp_path / folder / "x.png", photo_like(rng), format="PNG")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = run_cli("encode", "a/x.png", "b/x.png", *(["-o", output] if output else []), check=False)
    assert proc.returncode == 1 and "two inputs share the name 'x'" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written, no folder made
    for folder in ("a", "b"):
        run_cli("encode", f"{folder}/x.png", "-o", f"{folder}/x.npy")
    proc = run_cli("decode", "a/x.npy", "b/x.npy", *(["-o", output] if output else []), check=False)
    assert proc.returncode == 1 and "two inputs share the name 'x'" in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.rec.png").exists()
