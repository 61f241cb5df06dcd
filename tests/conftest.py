import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background (nohup, `cmd &`): Ctrl-C tests need it
    signal.signal(signal.SIGINT, signal.default_int_handler)  # back, here and in the processes the tests start


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


def photo_like(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A smooth random picture (gradients and blobs), more like a photo than white noise."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3))
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = 0.5 + 0.3 * np.sin(2 * np.pi * (a * x + b * y) + p * 3)
        cx, cy, r = rng.uniform(0, 1, 3)
        img[..., c] += 0.3 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.05 + 0.1 * r))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_image(path: Path, pixels: np.ndarray, mode: str = "RGB", **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path, **save)
    return path


def make_tiny_imagenet(root: Path, classes: int = 3, per_class: int = 6, val: int = 4, corrupt: bool = True, seed: int = 0) -> Path:
    """A Tiny ImageNet tree: train/<wnid>/images/*.JPEG (some grayscale), val/images, wnids.txt; one corrupt file."""
    rng = np.random.default_rng(seed)
    wnids = [f"n{1000 + i:08d}" for i in range(classes)]
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for k, wnid in enumerate(wnids):
        for i in range(per_class):
            mode = "L" if (k * per_class + i) % 5 == 0 else "RGB"
            write_image(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", photo_like(rng), mode, format="JPEG", quality=90)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    lines = []
    for i in range(val):
        write_image(root / "val" / "images" / f"val_{i}.JPEG", photo_like(rng), format="JPEG", quality=90)
        lines.append(f"val_{i}.JPEG\t{wnids[i % classes]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    if corrupt:
        (root / "train" / wnids[0] / "images" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture
def tiny_imagenet(tmp_path) -> Path:
    return make_tiny_imagenet(tmp_path / "tiny-imagenet-200")


def autoenc_command() -> list[str]:
    exe = shutil.which("autoenc")
    return [exe] if exe else [sys.executable, "-m", "autoenc_cli"]


def run_cli(*args, check: bool = True, env=None, cwd=None, process: bool = False) -> subprocess.CompletedProcess:
    """`autoenc ARGS`, in this process through Typer's CliRunner (fast), or with process=True as a real process
    (for what only a process shows: signals, exit on a closed pipe, start-up time, the installed script)."""
    if process:
        full_env = dict(os.environ, **(env or {}))
        full_env.setdefault("COLUMNS", "200")
        proc = subprocess.run(autoenc_command() + [str(a) for a in args], capture_output=True, text=True, env=full_env,
                              cwd=cwd, timeout=600)
    else:
        proc = run_in_process([str(a) for a in args], {"COLUMNS": "200", **(env or {})}, cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"autoenc {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_in_process(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    """CliRunner's result as a CompletedProcess. An exception that escaped the command is written to stderr as
    the traceback a real process would print, so that "no traceback" assertions keep their meaning."""
    import contextlib
    import traceback

    from typer.testing import CliRunner

    from autoenc_cli.cli.app import app
    with contextlib.chdir(cwd) if cwd else contextlib.nullcontext():
        result = CliRunner().invoke(app, args, env=env, prog_name="autoenc")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["autoenc", *args], result.exit_code, result.stdout, stderr)


def torchrun_workers(agent) -> dict[int, int]:
    """{rank: pid} of the processes that this torchrun agent (a subprocess.Popen) runs now."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == agent.pid:
                env = dict(v.split("=", 1) for v in (entry / "environ").read_text().split("\0") if "=" in v)
                if "RANK" in env:
                    found[int(env["RANK"])] = int(entry.name)
        except (OSError, ValueError, IndexError):
            continue  # it ended while we looked
    return found
