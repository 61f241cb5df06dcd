"""Every command that draws live output, run in a pseudo-terminal as a person types it (issue 33): rich draws its
bars only on a terminal, and with rich 15 our console wrapper looped forever there while no pipe-based test could
see it. Each run must end in bounded time, draw its bar and exit with the right code."""

import hashlib
import io
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import autoenc_command, make_tiny_imagenet, photo_like, write_image
from safetensors import safe_open
from terminal import run_in_terminal, start_in_terminal
from test_photos import make_photos

from autoenc_cli.training.checkpoint import read_log

BAR = "━"  # rich's bar glyph: something was drawn live


def pictures(folder: Path, count: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    return [write_image(folder / f"p{i:02d}.png", photo_like(rng), format="PNG") for i in range(count)]


def small_training(data: Path, run: Path, cache: Path, *extra) -> list:
    return ["train", data, "--out", run, "--cache-dir", cache, "--batch-size", 4, "--precision", "fp32", *extra]


def test_encode_and_decode_of_many_files_draw_a_bar_and_finish(tmp_path):
    sources = pictures(tmp_path / "in", 6)
    code, text = run_in_terminal(["encode", *sources, "-o", tmp_path / "lat/"], timeout=60, columns=80)
    assert code == 0 and BAR in text and "6/6" in text, text
    latents = sorted((tmp_path / "lat").glob("*.npy"))
    assert len(latents) == 6
    code, text = run_in_terminal(["decode", *latents, "-o", tmp_path / "out/"], timeout=60, columns=200)
    assert code == 0 and BAR in text and "6/6" in text and re.search(r"6/6 .* eta \d", text), text  # time left too
    assert len(list((tmp_path / "out").glob("*.png"))) == 6


@pytest.mark.slow
def test_train_draws_the_cache_bar_the_training_bar_and_validation_lines(tiny_imagenet, tmp_path):
    args = small_training(tiny_imagenet, tmp_path / "run", tmp_path / "cache", "--max-steps", 60, "--epochs", 1000)
    code, text = run_in_terminal(args, timeout=240)
    assert code == 0, text
    assert "decoding train images" in text and "training" in text and BAR in text, text
    assert re.search(r"val PSNR [\d.]+ dB", text) and "done" in text, text
    assert (tmp_path / "run" / "model.safetensors").is_file()


@pytest.mark.slow
def test_ctrl_c_typed_in_the_terminal_saves_and_a_second_one_aborts(tiny_imagenet, tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = small_training(tiny_imagenet, run, cache, "--epochs", 100000, "--save-every", 100000, "--save-minutes", 1000)
    session = start_in_terminal(args)
    assert session.wait_for("epoch", timeout=180), session.text  # the training bar is up
    session.type(b"\x03")
    assert session.finish(timeout=60) == 130, session.text
    assert "stopping soon to save the state" in session.text and "--resume" in session.text
    with safe_open(str(run / "state.safetensors"), "pt") as f:  # saved on the way out, and whole
        assert f.metadata()["info"]

    # a step long enough (batch 128) that the second Ctrl-C lands before the save that the first one asked for
    session = start_in_terminal(small_training(tiny_imagenet, tmp_path / "big", cache, "--batch-size", 128, "--max-steps", 1000))
    assert session.wait_for("epoch", timeout=180), session.text
    session.type(b"\x03")
    assert session.wait_for("stopping soon", timeout=30), session.text
    session.type(b"\x03")
    assert session.finish(timeout=60) == 130, session.text
    lines = [line.strip() for line in session.text.replace("\r", "\n").splitlines()]
    assert "interrupted" in lines and "Traceback" not in session.text, session.text  # the abort's own line ...
    assert "interrupted at step" not in session.text and not (tmp_path / "big" / "state.safetensors").exists()  # ... no save


@pytest.mark.slow
def test_eval_and_score_draw_and_finish(tmp_path):
    data = tmp_path / "data"
    pictures(data, 6, seed=3)
    code, text = run_in_terminal(["eval", data], timeout=120)
    assert code == 0 and "PSNR" in text, text
    code, text = run_in_terminal(["score", data, "-o", tmp_path / "scores.csv"], timeout=120)
    assert code == 0 and (tmp_path / "scores.csv").read_text().count("\n") == 7, text


@pytest.mark.slow
def test_download_from_a_local_server_draws_bytes_and_finishes(tmp_path):
    import http.server
    import threading
    root = make_tiny_imagenet(tmp_path / "src" / "tiny-imagenet-200", classes=2, per_class=2, val=1, corrupt=False)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(root.rglob("*")):
            zf.write(p, p.relative_to(root.parent).as_posix())
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "t.zip").write_bytes(buf.getvalue())
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/t.zip"
        code, text = run_in_terminal(["download", tmp_path / "got", "--url", url, "--md5",
                                      hashlib.md5(buf.getvalue()).hexdigest()], timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0 and (tmp_path / "got" / "wnids.txt").is_file(), text


@pytest.mark.slow
def test_a_short_bench_finishes(tiny_imagenet, tmp_path):
    code, text = run_in_terminal(["bench", tiny_imagenet, "--naive-steps", 1, "--steps", 60, "--cache-dir", tmp_path / "cache",
                                  "--device", "cpu"], timeout=400)
    assert code == 0 and "img/s" in text, text


def test_output_piped_through_tee_is_plain_text_and_complete(tmp_path):
    """Beside the terminal: `autoenc encode ... | tee` gets no escape codes and every line."""
    sources = pictures(tmp_path / "in", 3)
    proc = subprocess.run(autoenc_command() + ["encode", *map(str, sources), "-o", str(tmp_path / "lat") + "/"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "\x1b[" not in proc.stdout + proc.stderr
    assert proc.stdout.count(" -> ") == 3, proc.stdout


def test_help_and_info_read_whole_in_80_columns():
    from autoenc_cli.model.weights import default_weights_path
    for args in (["--help"], ["train", "--help"], ["encode", "--help"], ["info", default_weights_path()]):
        code, text = run_in_terminal(args, timeout=60, columns=80)
        lines = text.replace("\r", "").split("\n")
        assert code == 0 and max(len(line) for line in lines) <= 80, (args, text)  # nothing wraps past the edge


def photo_training(tmp_path, *extra) -> list:
    """A run whose epochs are hundreds of steps (windows of photos): log windows come between checkpoints."""
    data = make_photos(tmp_path / "photos", count=6)
    return small_training(data, tmp_path / "run", tmp_path / "cache", "--windows-per-photo", 1000, "--epochs", 1000,
                          "--save-every", 100000, "--save-minutes", 1000, *extra)


ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # a test machine's cores are shared: threads waiting for each other slow it most


def logged_rows(session, log, count: int, timeout: float) -> list[dict]:
    """The rows of log.csv once it holds `count` logged windows, read while the run goes on."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and session.proc.poll() is None:
        session.read(0.3)  # keep reading what it draws: a full terminal would stop it
        rows = [r for r in read_log(log) if r.get("train_loss")] if log.exists() else []
        if len(rows) >= count:
            return rows
    raise AssertionError(f"{log}: fewer than {count} rows while training; it drew:\n{session.text[-2000:]}")


@pytest.mark.slow
def test_the_bar_shows_loss_and_rate_before_the_first_log_window(tmp_path):
    session = start_in_terminal(photo_training(tmp_path, "--batch-size", 32))
    assert session.wait_for(" loss ", timeout=240), session.text
    session.type(b"\x03")
    assert session.finish(timeout=120) == 130, session.text
    first = re.search(r"(\d+)/\d+[^\r\n]* loss [\d.]+ [\d,]+ img/s", session.text)
    assert first and int(first.group(1)) < 50, session.text[-2000:]  # the first log window ends at step 50


@pytest.mark.slow
def test_log_rows_reach_the_file_while_training_and_a_resume_says_once_where_it_continues(tmp_path):
    args, log = photo_training(tmp_path, "--batch-size", 2), tmp_path / "run" / "log.csv"
    session = start_in_terminal(args, env=ONE_THREAD)
    rows = logged_rows(session, log, 2, timeout=300)
    inode = os.stat(log).st_ino
    rows = logged_rows(session, log, len(rows) + 1, timeout=300)
    assert [int(r["step"]) for r in rows] == list(range(50, 50 * len(rows) + 1, 50))  # a row per window, no save yet
    assert os.stat(log).st_ino != inode  # rewritten whole into a new file and renamed over: never half-written
    session.type(b"\x03")
    assert session.finish(timeout=120) == 130, session.text
    saved = int(re.search(r"interrupted at step (\d+)", session.text).group(1))

    for again in (["--resume"], ["--auto-resume"]):
        session = start_in_terminal(args + again, env=ONE_THREAD)
        seen = logged_rows(session, log, saved // 50 + 1, timeout=300)
        assert [int(r["step"]) for r in seen] == list(range(50, 50 * len(seen) + 1, 50))  # the earlier rows kept
        session.type(b"\x03")
        assert session.finish(timeout=120) == 130, session.text
        assert " ".join(session.text.split()).count(f"continuing the run in {tmp_path / 'run'} from step {saved:,}") == 1
        assert "auto-resume" not in session.text, session.text
        saved = int(re.search(r"interrupted at step (\d+)", session.text).group(1))
