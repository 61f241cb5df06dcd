"""Odd inputs for every command (issue 28): links that loop, FIFOs, sockets and devices as inputs and as outputs,
names that are not UTF-8 or hold a line break, damaged files of every kind autoenc writes, full disks, outputs
inside inputs, folders where files go and files where folders go.

Every case ends within a deadline (in this process under SIGALRM; the hang cases also as real processes with a
timeout), and for bad input exits non-zero with one line on stderr that names the file, and no traceback. A device,
FIFO or socket given as an output is the same thing afterwards. The first tests are one per kind of failure the
issue found; MATRIX is the wider set.
"""

import importlib.util
import json
import os
import signal
import socket
import stat
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import autoenc_command, photo_like, run_in_process, write_image

from autoenc_cli.codec.latentfile import save_latent
from autoenc_cli.data.listing import find_images
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.model.weights import save_weights
from autoenc_cli.training.checkpoint import save_state
from autoenc_cli.training.config import TrainConfig

DEADLINE_S = 60
BAD_NAME = os.fsdecode(b"bad\xff.png")  # not UTF-8: carried as surrogateescape gives it
NEWLINE_NAME = "two\nlines.png"
LONG = "y" * 300  # longer than a file name may be
DEVICES = [d for d in ("/dev/null", "/dev/zero", "/dev/full") if os.path.exists(d)]
needs_devices = pytest.mark.skipif(len(DEVICES) < 3, reason="needs /dev/null, /dev/zero and /dev/full")


# ---------------------------------------------------------------- the odd files, made once

def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def unix_socket(path: Path) -> Path:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    return path


HAVE_ONNX = importlib.util.find_spec("onnx") is not None  # the onnx extra: only its cases need it


def skip_without_onnx(args) -> None:
    if not HAVE_ONNX and any(str(a).endswith(".onnx") for a in args):
        pytest.skip("needs the onnx extra: pip install 'autoenc[onnx]'")


def tiny_onnx(path: Path, **metadata: str) -> Path:
    """A valid one-node ONNX model with the given metadata entries."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def make_run(folder: Path, model: Autoencoder, data: Path) -> Path:
    """A run folder as train leaves it: state, weights, log."""
    folder.mkdir()
    save_state(folder / "state.safetensors", model, torch.optim.Adam(model.parameters()),
               {"step": 2, "config": asdict(TrainConfig(data=str(data), out=str(folder), max_steps=2, batch_size=2)), "elapsed_s": 1.0})
    save_weights(model, folder / "model.safetensors")
    (folder / "log.csv").write_text("step,epoch,lr,train_loss,images_per_s,elapsed_s,val_loss,val_psnr,event\n"
                                    "1,0,0.001,0.5,10,0.1,,,\n2,0,0.001,0.4,10,0.2,0.4,12.5,\n")
    return folder


def write_odd_files(d: Path) -> None:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = Autoencoder(1)
    init_weights(model)
    save_weights(model, d / "w.safetensors")
    write_image(d / "good.png", photo_like(rng), format="PNG")
    for i in range(3):
        write_image(d / "data" / f"img{i}.png", photo_like(rng), format="PNG")
        write_image(d / "fifo-data" / f"img{i}.png", photo_like(rng), format="PNG")
        write_image(d / "names" / f"img{i}.png", photo_like(rng), format="PNG")
    fifo(d / "fifo-data" / "x.png")
    write_image(d / "names" / BAD_NAME, photo_like(rng), format="PNG")
    write_image(d / "loops" / "a.png", photo_like(rng), format="PNG")
    write_image(d / "loops" / "sub" / "b.png", photo_like(rng), format="PNG")
    for link, to in (("self", "."), ("self2", "."), ("sub/up", ".."), ("sub/again", "../sub")):
        os.symlink(to, d / "loops" / link)
    (d / NEWLINE_NAME).write_text("not a picture")
    (d / ("x" * 247 + ".png")).write_bytes((d / "good.png").read_bytes())  # 251 bytes: its sidecar's name would be 260
    (d / "-dash.png").write_bytes((d / "good.png").read_bytes())
    # special files where files are read, and where outputs go
    for name in ("fifo.png", "fifo.npy", "fifo.safetensors", "fifo.onnx", "fifo.csv", "fifo.zip", "fifo-out.npy", "fifo-out.png",
                 "fifo-out.onnx"):
        fifo(d / name)
    unix_socket(d / "sock.png")
    os.symlink("loop.png", d / "loop.png")
    for name in ("folder.png", "folder.npy", "folder.safetensors", "folder.onnx"):
        (d / name).mkdir()
    (d / "a-file").write_text("a file where a folder goes\n")
    # latents and their sidecars, whole and damaged
    z = rng.normal(size=(128, 4, 4)).astype(np.float32)
    save_latent(d / "good.npy", z, (64, 64))
    npy = (d / "good.npy").read_bytes()
    (d / "empty.npy").write_bytes(b"")
    (d / "truncated.npy").write_bytes(npy[:len(npy) // 2])
    (d / "garbage.npy").write_bytes(rng.bytes(300))
    with open(d / "claims-huge.npy", "wb") as f:  # a header promising 2**40 values, and none of them
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (128, 2**16, 2**16)})
    for name, sidecar in (("side-garbage", b"{not json"), ("side-binary", b"\xff\xfe\x00"), ("side-empty", b""),
                          ("side-list", b"[1, 2]")):
        (d / f"{name}.npy").write_bytes(npy)
        (d / f"{name}.npy.json").write_bytes(sidecar)
    save_latent(d / "int8.npy", z, (64, 64), "int8")
    meta = json.loads((d / "int8.npy.json").read_text())
    for name, scale in (("inf", 1e999), ("bigint", 10**400), ("huge", 1e300), ("zero", 0), ("text", "1")):
        (d / f"scale-{name}.npy").write_bytes((d / "int8.npy").read_bytes())
        (d / f"scale-{name}.npy.json").write_text(json.dumps(meta | {"scale": [scale] + meta["scale"][1:]}))
    (d / "side-fifo.npy").write_bytes(npy)
    fifo(d / "side-fifo.npy.json")
    (d / "out-fifo-side.npy.json").parent.mkdir(exist_ok=True)
    fifo(d / "out-fifo-side.npy.json")  # the sidecar of an output
    # weights, states and logs, whole and damaged
    weights = (d / "w.safetensors").read_bytes()
    (d / "empty.safetensors").write_bytes(b"")
    (d / "truncated.safetensors").write_bytes(weights[:len(weights) // 2])
    (d / "garbage.safetensors").write_bytes(rng.bytes(1000))
    run = make_run(d / "run", model, d / "data")
    state = (run / "state.safetensors").read_bytes()
    (d / "truncated-state.safetensors").write_bytes(state[:len(state) // 2])
    for name, change in (("badlog", lambda r: (r / "log.csv").write_bytes(b"step,train_loss\n1,0.5\n\xff\xfe,2\n")),
                         ("nullog", lambda r: (r / "log.csv").write_bytes(b"step,train_loss\n1,0.5\x00\x00\n")),
                         ("truncstate", lambda r: (r / "state.safetensors").write_bytes(state[:len(state) // 2])),
                         ("fifostate", lambda r: ((r / "state.safetensors").unlink(), fifo(r / "state.safetensors"))),
                         ("fifolog", lambda r: ((r / "log.csv").unlink(), fifo(r / "log.csv"))),
                         ("fifomodel", lambda r: ((r / "state.safetensors").unlink(), (r / "model.safetensors").unlink(),
                                                  fifo(r / "model.safetensors")))):
        change(make_run(d / f"run-{name}", model, d / "data"))
    logs = {"zeros": "step,train_loss,val_loss,val_psnr\n1,0,0,\n2,0,0,30\n", "negative": "step,train_loss\n1,-5\n2,-1\n",
            "huge": "step,train_loss,val_psnr\n1,1e308,-1e308\n2,5e-324,1e308\n", "one-row": "step,train_loss\n7,0.5\n",
            "no-step": "epoch,train_loss\n1,0.5\n", "empty": "", "header-only": "step,train_loss\n"}
    for name, text in logs.items():
        (d / f"log-{name}.csv").write_text(text)
    (d / "log-binary.csv").write_bytes(rng.bytes(500))
    # ONNX models
    if HAVE_ONNX:
        tiny_onnx(d / "plain.onnx")
        tiny_onnx(d / "text-provenance.onnx", format="autoenc-onnx", provenance="made by hand", weights="w.safetensors")
        (d / "truncated.onnx").write_bytes((d / "text-provenance.onnx").read_bytes()[:40])
    (d / "empty.onnx").write_bytes(b"")
    (d / "garbage.onnx").write_bytes(rng.bytes(200))
    # folders that hold things in the way of outputs
    (d / "heat-fifo").mkdir()
    fifo(d / "heat-fifo" / "001_img0.png")


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("odd")
    write_odd_files(d)
    return d


# ---------------------------------------------------------------- running a command

class Deadline(Exception):
    pass


def on_alarm(signum, frame):
    raise Deadline(f"no answer within {DEADLINE_S} s")


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    """autoenc ARGS in this process, stopped by SIGALRM after DEADLINE_S (a blocked open() is interrupted)."""
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(DEADLINE_S)
    try:
        return run_in_process([str(a) for a in args], {"COLUMNS": "200"}, cwd)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def process(*args, cwd: Path, stdout=subprocess.PIPE, env=None) -> subprocess.CompletedProcess:
    """autoenc ARGS as a real process, killed after DEADLINE_S (subprocess.TimeoutExpired fails the test)."""
    return subprocess.run(autoenc_command() + [os.fsencode(a) if isinstance(a, (str, Path)) else str(a) for a in args],
                          cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, timeout=DEADLINE_S,
                          env=dict(os.environ, COLUMNS="200", **(env or {})))


def text(stream) -> str:
    return stream.decode("utf-8", "replace") if isinstance(stream, bytes) else (stream or "")


def assert_one_line_error(proc, says=(), early: bool = True) -> str:
    """Non-zero, no traceback, and the error is one line naming what it says. early: nothing else on stderr (the
    error came before any work); else the error is the last line (after progress bars)."""
    out, err = text(proc.stdout), text(proc.stderr)
    assert proc.returncode != 0, f"succeeded:\n{out}\n{err}"
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), err
    assert sum(line.startswith("error:") for line in lines) == 1, err
    if early:
        assert len(lines) == 1, err
    for words in says:
        assert words in lines[-1], (words, lines[-1])
    return lines[-1]


def kinds(paths) -> list[int]:
    return [stat.S_IFMT(os.lstat(p).st_mode) for p in paths]


# ---------------------------------------------------------------- one test per kind the issue found

def test_no_folder_is_walked_twice_and_links_never_loop(odd):
    found = find_images(odd / "loops")
    assert sorted(p.name for p in found) == ["a.png", "b.png"]
    assert find_images(odd / "loops", odd / "loops" / "sub") == found  # one walk over several roots, still once each


def test_a_fifo_named_like_a_picture_is_refused_before_it_is_read(odd):
    assert_one_line_error(cli("encode", "fifo.png", "-o", odd / "never.npy", cwd=odd), ("fifo.png", "is a FIFO, not a regular file"))
    assert_one_line_error(cli("info", "fifo.npy", cwd=odd), ("fifo.npy", "is a FIFO"))
    proc = cli("eval", "fifo-data", "-w", "w.safetensors", "--json", cwd=odd)  # skipped, named and counted, not waited on
    assert proc.returncode == 1 and json.loads(proc.stdout)["skipped"] == 1, proc.stderr
    assert "fifo-data/x.png: is a FIFO, not a regular file" in proc.stderr.splitlines()[-1]


@needs_devices
def test_an_output_never_replaces_a_device_or_a_fifo(odd, tmp_path):
    for target in ("/dev/full", odd / "fifo-out.npy"):
        assert_one_line_error(cli("encode", "good.png", "-w", "w.safetensors", "-o", target, cwd=odd),
                              (str(target), "not a regular file; not replacing it"))
    assert_one_line_error(cli("export", "w.safetensors", "-o", "/dev/null", cwd=odd), ("/dev/null", "is a character device"))
    assert kinds(["/dev/full", "/dev/null", odd / "fifo-out.npy"]) == [stat.S_IFCHR, stat.S_IFCHR, stat.S_IFIFO]


def test_names_that_are_not_utf8_reach_csv_json_and_messages_as_given(odd, tmp_path):
    assert cli("score", "names", "-w", "w.safetensors", "-o", tmp_path / "s.csv", cwd=odd).returncode == 0
    assert os.fsencode(BAD_NAME) in (tmp_path / "s.csv").read_bytes()  # JSON: eval-whole-bad-name in the matrix


def test_infinity_is_refused_where_it_means_nothing(odd):
    for command in (["encode", "good.png"], ["decode", "good.npy"], ["score", "data"], ["eval", "data", "--whole"]):
        assert cli(*command, "--max-memory", "inf", cwd=odd).returncode == 2
    assert_one_line_error(cli("encode", "good.png", "--max-memory", "inf", cwd=odd), ("--max-memory", "finite"))


def test_an_option_its_mode_does_not_read_is_refused(odd, tmp_path):
    for mode in ("--whole", "--rd"):
        assert_one_line_error(cli("eval", "data", mode, "--worst-png", tmp_path / "w.png", cwd=odd), ("--worst-png", mode))
    assert not (tmp_path / "w.png").exists()


def test_info_reads_as_strictly_as_the_command_that_uses_the_file(odd):
    skip_without_onnx(["x.onnx"])
    assert_one_line_error(cli("info", "empty.onnx", cwd=odd), ("empty.onnx", "not an ONNX model"))
    assert_one_line_error(cli("info", "truncated-state.safetensors", cwd=odd), ("truncated-state.safetensors", "damaged training state"))
    assert_one_line_error(cli("train", "data", "--out", "run-truncstate", "--resume", cwd=odd), ("damaged training state",))
    proc = cli("info", "text-provenance.onnx", cwd=odd)
    assert proc.returncode == 0 and "made by hand" in proc.stdout, proc.stderr


def test_the_tracebacks_the_issue_found(odd, tmp_path):
    proc = cli("plot", "log-zeros.csv", "-o", tmp_path / "curve.png", cwd=odd)
    assert proc.returncode == 0 and (tmp_path / "curve.png").is_file(), proc.stderr
    assert_one_line_error(cli("train", "data", "--out", "run-badlog", "--resume", cwd=odd), ("log.csv", "not UTF-8"))
    with open("/dev/full", "wb") as full:
        assert_one_line_error(process("score", "data", "-w", "w.safetensors", cwd=odd, stdout=full),
                              ("stdout", "No space left on device"), early=False)


# ---------------------------------------------------------------- the matrix: (id, arguments, words the error says)

W = ("-w", "w.safetensors")
MATRIX = [
    # special files as inputs
    ("encode-fifo", ["encode", "fifo.png", *W, "-o", "OUT/z.npy"], ["fifo.png", "FIFO"]),
    ("encode-socket", ["encode", "sock.png", *W, "-o", "OUT/z.npy"], ["sock.png", "socket"]),
    ("encode-zero", ["encode", "/dev/zero", *W, "-o", "OUT/z.npy"], ["/dev/zero", "character device"]),
    ("encode-loop", ["encode", "loop.png", *W, "-o", "OUT/z.npy"], ["loop.png", "symbolic links"]),
    ("encode-folder", ["encode", "folder.png", *W, "-o", "OUT/z.npy"], ["folder.png", "no image files"]),  # folders are searched
    ("decode-fifo", ["decode", "fifo.npy", *W, "-o", "OUT/x.png"], ["fifo.npy", "FIFO"]),
    ("decode-null", ["decode", "/dev/null", *W, "-o", "OUT/x.png"], ["/dev/null", "character device"]),
    ("decode-folder", ["decode", "folder.npy", *W, "-o", "OUT/x.png"], ["folder.npy", "directory"]),
    ("decode-fifo-sidecar", ["decode", "side-fifo.npy", *W, "-o", "OUT/x.png"], ["side-fifo.npy.json", "FIFO"]),
    ("info-fifo-npy", ["info", "fifo.npy"], ["fifo.npy", "FIFO"]),
    ("info-fifo-onnx", ["info", "fifo.onnx"], ["fifo.onnx", "FIFO"]),
    ("info-zero", ["info", "/dev/zero"], ["/dev/zero", "character device"]),
    ("info-socket", ["info", "sock.png"], ["sock.png", "socket"]),
    ("info-loop", ["info", "loop.png"], ["loop.png", "symbolic links"]),
    ("info-folder", ["info", "folder.safetensors"], ["folder.safetensors", "directory"]),
    ("plot-fifo", ["plot", "fifo.csv", "-o", "OUT/c.png"], ["fifo.csv", "FIFO"]),
    ("plot-fifo-in-run", ["plot", "run-fifolog", "-o", "OUT/c.png"], ["log.csv", "FIFO"]),
    ("plot-zero", ["plot", "/dev/zero", "-o", "OUT/c.png"], ["/dev/zero", "character device"]),
    ("eval-weights-fifo", ["eval", "data", "-w", "fifo.safetensors"], ["fifo.safetensors", "FIFO"]),
    ("score-weights-zero", ["score", "data", "-w", "/dev/zero"], ["/dev/zero", "character device"]),
    ("export-weights-fifo", ["export", "fifo.safetensors", "-o", "OUT/m.onnx"], ["fifo.safetensors", "FIFO"]),
    ("resume-state-fifo", ["train", "data", "--out", "run-fifostate", "--resume"], ["state.safetensors", "FIFO"]),
    ("auto-resume-state-fifo", ["train", "data", "--out", "run-fifostate", "--auto-resume"], ["state.safetensors", "FIFO"]),
    ("download-fifo-zip", ["download", "OUT/ds", "--url", "fifo.zip"], ["fifo.zip", "FIFO"]),
    ("score-missing", ["score", "no-such-folder", *W], ["no-such-folder", "no such file"]),
    ("score-loop-link", ["score", "loop.png", *W], ["loop.png", "symbolic links"]),
    # special files as outputs
    ("encode-to-full", ["encode", "good.png", *W, "-o", "/dev/full"], ["/dev/full", "not replacing it"]),
    ("encode-to-fifo", ["encode", "good.png", *W, "-o", "fifo-out.npy"], ["fifo-out.npy", "is a FIFO"]),
    ("encode-to-socket", ["encode", "good.png", *W, "-o", "sock.png"], ["sock.png", "is a socket"]),
    ("encode-sidecar-fifo", ["encode", "good.png", *W, "-o", "out-fifo-side.npy"], ["out-fifo-side.npy.json", "FIFO"]),
    ("stack-to-null", ["encode", "data", *W, "--stack", "/dev/null"], ["/dev/null", "not replacing it"]),
    ("stack-to-folder", ["encode", "data", *W, "--stack", "folder.npy"], ["folder.npy", "directory"]),
    ("decode-to-fifo", ["decode", "good.npy", *W, "-o", "fifo-out.png"], ["fifo-out.png", "FIFO"]),
    ("export-to-fifo", ["export", "w.safetensors", "-o", "fifo-out.onnx"], ["fifo-out.onnx", "FIFO"]),
    ("export-to-null", ["export", "w.safetensors", "-o", "/dev/null"], ["/dev/null", "character device"]),
    ("score-to-full", ["score", "data", *W, "-o", "/dev/full"], ["/dev/full", "not replacing it"]),
    ("heatmaps-to-null", ["score", "data", *W, "--heatmaps", "/dev/null"], ["/dev/null", "character device"]),
    ("heatmaps-fifo-inside", ["score", "data", *W, "--heatmaps", "heat-fifo"], ["heat-fifo", "not heatmaps"]),
    ("heatmaps-to-file", ["score", "data", *W, "--heatmaps", "a-file"], ["a-file", "is a file"]),
    ("worst-png-to-full", ["eval", "data", *W, "--worst-png", "/dev/full"], ["/dev/full", "not replacing it"]),
    ("rd-png-to-fifo", ["eval", "data", *W, "--rd", "--rd-png", "fifo-out.png"], ["fifo-out.png", "FIFO"]),
    ("plot-to-full", ["plot", "run", "-o", "/dev/full"], ["/dev/full", "not replacing it"]),
    ("plot-to-fifo", ["plot", "run", "-o", "fifo-out.png"], ["fifo-out.png", "FIFO"]),
    ("train-over-fifo-model", ["train", "data", "--out", "run-fifomodel", "--max-steps", 1], ["model.safetensors", "FIFO"]),
    ("train-out-is-file", ["train", "data", "--out", "a-file", "--max-steps", 1], ["a-file", "is a file"]),
    # outputs inside inputs, and an input as its own output
    ("heatmaps-inside-data", ["score", "data", *W, "--heatmaps", "data/heat"], ["data/heat", "inside the dataset"]),
    ("worst-png-inside-data", ["eval", "data", *W, "--worst-png", "data/w.png"], ["data/w.png", "inside the dataset"]),
    ("train-out-inside-data", ["train", "data", "--out", "data/run"], ["data/run", "inside the dataset"]),
    ("decode-over-own-sidecar", ["decode", "good.npy", *W, "-o", "good.npy.json"], ["good.npy.json", "is also an input"]),
    ("plot-over-its-log", ["plot", "run", "-o", "run/log.csv"], ["log.csv", "is the log itself"]),
    # damaged latents and sidecars
    *[(f"decode-{n}", ["decode", f"{n}.npy", *W, "-o", "OUT/x.png"], [f"{n}.npy", why]) for n, why in (
        ("empty", "not a .npy"), ("truncated", "truncated"), ("garbage", "not a .npy"), ("claims-huge", "truncated"),
        ("side-garbage", "unreadable latent sidecar"), ("side-binary", "not UTF-8"), ("side-empty", "unreadable latent sidecar"),
        ("side-list", "not an autoenc latent sidecar"), *[(f"scale-{k}", "scales") for k in ("inf", "bigint", "huge", "zero", "text")])],
    *[(f"info-{n}", ["info", f"{n}.npy"], [f"{n}.npy"]) for n in ("truncated", "claims-huge", "side-binary", "side-fifo")],
    # damaged weights, states, logs, ONNX models
    *[(f"{c}-weights-{n}", [c, *a, "-w", f"{n}.safetensors"], [f"{n}.safetensors"]) for n in ("empty", "truncated", "garbage")
      for c, a in (("encode", ["good.png", "-o", "OUT/z.npy"]), ("decode", ["good.npy", "-o", "OUT/x.png"]), ("score", ["data"]))],
    *[(f"info-{n}", ["info", f"{n}.safetensors"], [f"{n}.safetensors"]) for n in ("empty", "truncated", "garbage")],
    ("export-truncated", ["export", "truncated.safetensors", "-o", "OUT/m.onnx"], ["truncated.safetensors"]),
    ("init-truncated", ["train", "data", "--out", "OUT/run", "--init", "truncated.safetensors"], ["truncated.safetensors"]),
    ("init-state", ["train", "data", "--out", "OUT/run", "--init", "run/state.safetensors"], ["run/state.safetensors"]),
    ("weights-is-state", ["score", "data", "-w", "run/state.safetensors"], ["run/state.safetensors"]),
    ("resume-truncated", ["train", "data", "--out", "run-truncstate", "--resume"], ["state.safetensors", "damaged training state"]),
    ("resume-null-log", ["train", "data", "--out", "run-nullog", "--resume"], ["log.csv"]),
    *[(f"plot-{n}", ["plot", f"log-{n}.csv", "-o", "OUT/c.png"], [f"log-{n}.csv"]) for n in ("empty", "header-only", "no-step", "binary")],
    *[(f"info-{n}-onnx", ["info", f"{n}.onnx"], [f"{n}.onnx", "ONNX"]) for n in ("empty", "truncated", "garbage")],
    # names
    ("newline-name", ["encode", NEWLINE_NAME, *W, "-o", "OUT/z.npy"], ["two\\nlines.png", "not an image"]),
    ("long-name-sidecar", ["encode", "x" * 247 + ".png", *W], ["x" * 40, "File name too long"]),
    *[(f"too-long-{c}", [c, *a], [LONG[:40], "File name too long"]) for c, a in (
        ("encode", [LONG + ".png", *W]), ("decode", [LONG + ".npy", *W]), ("info", [LONG + ".npy"]), ("plot", [LONG]),
        ("score", [LONG, *W]), ("eval", [LONG, *W]), ("train", [LONG, "--out", "OUT/run"]))],
    ("too-long-output", ["encode", "good.png", *W, "-o", LONG + ".npy"], [LONG[:40], "File name too long"]),
    ("too-long-csv", ["score", "data", *W, "-o", LONG + ".csv"], [LONG[:40], "File name too long"]),
    # numbers and modes
    *[(f"max-memory-{v}", ["encode", "good.png", *W, "-o", "OUT/z.npy", "--max-memory", v], ["--max-memory"])
      for v in ("inf", "-inf", "nan", "1e999", "0")],
    ("percentile-inf", ["score", "data", *W, "--reference", "data", "--percentile", "inf"], ["--percentile"]),
    ("eval-whole-worst-png", ["eval", "data", *W, "--whole", "--worst-png", "OUT/w.png"], ["--worst-png", "--whole"]),
    ("eval-rd-worst-png", ["eval", "data", *W, "--rd", "--worst-png", "OUT/w.png"], ["--worst-png", "--rd"]),
    ("eval-max-memory", ["eval", "data", *W, "--max-memory", 100], ["--max-memory", "--whole"]),
    ("eval-rd-max-memory", ["eval", "data", *W, "--rd", "--max-memory", 100], ["--max-memory", "--rd"]),
    ("eval-rd-png-alone", ["eval", "data", *W, "--rd-png", "OUT/r.png"], ["--rd-png", "--rd"]),
    ("score-worst-alone", ["score", "data", *W, "--worst", 3], ["--worst", "--heatmaps"]),
    ("score-percentile-alone", ["score", "data", *W, "--percentile", 50], ["--percentile", "--reference"]),
    ("info-layers-latent", ["info", "good.npy", "--layers"], ["good.npy", "--layers"]),
]


@pytest.mark.parametrize("args, says", [pytest.param(a, s, id=i) for i, a, s in MATRIX])
def test_odd_input(odd, tmp_path, args, says):
    watched = [odd / n for n in ("fifo-out.npy", "fifo-out.png", "fifo-out.onnx", "sock.png", "out-fifo-side.npy.json",
                                 "run-fifostate/state.safetensors", "run-fifomodel/model.safetensors")] + DEVICES
    skip_without_onnx(args)
    before = kinds(watched)
    args = [str(a).replace("OUT/", f"{tmp_path}/") for a in args]
    assert_one_line_error(cli(*args, cwd=odd), says)
    assert kinds(watched) == before  # no device, FIFO or socket was replaced
    assert not list(tmp_path.iterdir())  # nothing half-written


# ---------------------------------------------------------------- odd inputs that must work

@pytest.mark.parametrize("args, check", [
    pytest.param(["score", "loops", *W, "--json"], lambda out, d: json.loads(out)["pictures"] == 2, id="score-loops-once-each"),
    pytest.param(["encode", *W, "-o", "OUT/z.npy", "--", "-dash.png"], lambda out, d: (d / "z.npy").is_file(), id="leading-dash"),
    pytest.param(["plot", "log-zeros.csv", "-o", "OUT/c.png"], lambda out, d: (d / "c.png").is_file(), id="plot-zero-losses"),
    pytest.param(["plot", "log-negative.csv", "-o", "OUT/c.png"], lambda out, d: (d / "c.png").is_file(), id="plot-negative-losses"),
    pytest.param(["plot", "log-huge.csv", "-o", "OUT/c.png"], lambda out, d: (d / "c.png").is_file(), id="plot-huge-values"),
    pytest.param(["plot", "log-one-row.csv", "-o", "OUT/c.png"], lambda out, d: (d / "c.png").is_file(), id="plot-one-row"),
    pytest.param(["info", "text-provenance.onnx"], lambda out, d: "made by hand" in out, id="info-onnx-text-provenance"),
    pytest.param(["info", "plain.onnx"], lambda out, d: "not made by autoenc export" in out, id="info-onnx-foreign"),
    pytest.param(["info", "run/state.safetensors"], lambda out, d: "training state" in out, id="info-state"),
    pytest.param(["eval", "names", *W, "--whole", "--json"], lambda out, d: json.loads(out)["pictures"] == 4, id="eval-whole-bad-name"),
    pytest.param(["score", "names", *W, "--heatmaps", "OUT/h"], lambda out, d: len(list((d / "h").iterdir())) == 4, id="heatmaps-bad-name",
                 marks=pytest.mark.slow),
])
def test_odd_input_that_works(odd, tmp_path, args, check):
    skip_without_onnx(args)
    args = [str(a).replace("OUT/", f"{tmp_path}/") for a in args]
    proc = cli(*args, cwd=odd)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert check(proc.stdout, tmp_path), proc.stdout


@pytest.mark.parametrize("args, check", [
    pytest.param(["score", "fifo-data", *W, "--json"], lambda out, d: json.loads(out)["skipped"] == ["fifo-data/x.png"], id="score"),
    pytest.param(["encode", "fifo-data", *W, "--stack", "OUT/s.npy"], lambda out, d: len(json.loads((d / "s.npy.json").read_text())["skipped"]) == 1,
                 id="stack"),
    pytest.param(["encode", "fifo-data", *W, "-o", "OUT/z/"], lambda out, d: len(list((d / "z").glob("*.npy"))) == 3, id="encode-folder"),
])
def test_a_fifo_in_a_folder_is_skipped_the_rest_done_and_the_end_says_so(odd, tmp_path, args, check):
    args = [str(a).replace("OUT/", f"{tmp_path}/") for a in args]
    proc = cli(*args, cwd=odd)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "skipped 1 of 4 pictures, unreadable" in proc.stderr and "fifo-data/x.png: is a FIFO" in proc.stderr
    assert check(proc.stdout, tmp_path), proc.stdout


def test_training_skips_a_fifo_in_its_folder(odd, tmp_path):
    proc = cli("train", "fifo-data", "--out", tmp_path / "run", "--max-steps", 1, "--batch-size", 2, "--precision", "fp32", cwd=odd)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert stat.S_ISFIFO(os.lstat(odd / "fifo-data" / "x.png").st_mode)


# ---------------------------------------------------------------- real processes: hangs, full disks, strict streams

@pytest.mark.slow
@pytest.mark.parametrize("args, says", [
    pytest.param(["info", "fifo.npy"], ["fifo.npy", "FIFO"], id="info-fifo"),
    pytest.param(["encode", "fifo.png", "-o", "/dev/full"], ["fifo.png", "FIFO"], id="encode-fifo"),
    pytest.param(["plot", "fifo.csv"], ["fifo.csv", "FIFO"], id="plot-fifo"),
    pytest.param(["decode", "side-fifo.npy", "-o", "/dev/full"], ["/dev/full", "not replacing"], id="decode-to-full"),
])
def test_hang_cases_as_processes(odd, args, says):
    assert_one_line_error(process(*args, cwd=odd), says)


@pytest.mark.slow
def test_walks_and_training_with_loops_and_fifos_end_as_processes(odd, tmp_path):
    proc = process("score", "loops", *W, "--json", cwd=odd)
    assert proc.returncode == 0 and json.loads(proc.stdout)["pictures"] == 2, proc.stderr
    proc = process("train", "fifo-data", "--out", tmp_path / "run", "--max-steps", 1, "--batch-size", 2, cwd=odd)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args", [["info", "good.npy"], ["eval", "data", *W, "--json"]], ids=["info", "eval-json"])
def test_stdout_on_a_full_disk_is_one_line(odd, args):
    with open("/dev/full", "wb") as full:
        assert_one_line_error(process(*args, cwd=odd, stdout=full), ("stdout", "No space left on device"), early=False)


@pytest.mark.slow
@pytest.mark.parametrize("env, args", [
    pytest.param({"PYTHONIOENCODING": "utf-8:strict"}, ["encode", Path("names") / BAD_NAME, *W, "-o", "OUT/z.npy"], id="utf8-strict-encode"),
    pytest.param({"PYTHONIOENCODING": "ascii", "LC_ALL": "C"}, ["score", "names", *W], id="ascii-score"),
])
def test_names_that_are_not_utf8_under_strict_streams(odd, tmp_path, env, args):
    proc = process(*[Path(str(a).replace("OUT/", f"{tmp_path}/")) if isinstance(a, str) and a.startswith("OUT/") else a for a in args],
                   cwd=odd, env=env)
    assert proc.returncode == 0 and os.fsencode(BAD_NAME) in proc.stdout and b"Traceback" not in proc.stderr, proc.stderr
