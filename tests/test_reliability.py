"""Bad input never crashes autoenc, and nothing a user made is lost or half-written.

Every command given bad input exits non-zero with exactly one line on stderr that names the file
(or option) and the problem, and no traceback. Most cases run the command in this process (fast);
`test_the_installed_command_*` run the real `autoenc` to check its actual stderr.
"""

import os
import pickle
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo_like, run_cli, write_image
from PIL import Image
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from autoenc_cli.measures.bench import naive_reference
from autoenc_cli.cli.app import app
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import atomic_path, write_bytes_atomic
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.model.weights import model_config, save_weights
from autoenc_cli.training.optim import FusedAdam


class Touch:
    """Unpickling this creates a file: if that file ever exists, something was unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a huge picture with (almost) no data: a decompression bomb."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """One folder of good and bad inputs of every kind, shared by the tests below (they only read it)."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    for width in (1, 2):
        model = Autoencoder(width)
        init_weights(model)
        save_weights(model, d / f"w{width}.safetensors")
    # images
    write_image(d / "good.png", photo_like(rng), format="PNG")
    write_image(d / "good.jpg", photo_like(rng), format="JPEG", quality=90)
    (d / "empty.png").write_bytes(b"")
    png, jpg = (d / "good.png").read_bytes(), (d / "good.jpg").read_bytes()
    (d / "truncated.png").write_bytes(png[:len(png) // 2])
    (d / "truncated.jpg").write_bytes(jpg[:len(jpg) // 2])
    (d / "text.png").write_text("this is not a picture\n")
    (d / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (d / "folder.png").mkdir()
    # latents
    np.save(d / "good.npy", rng.normal(size=(128, 4, 4)).astype(np.float32))
    np.save(d / "wide.npy", np.zeros((256, 4, 4), np.float32))  # made by weights of channel multiplier 2
    np.save(d / "shape.npy", np.zeros((3, 4, 4), np.float32))
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        z = np.zeros((128, 4, 4), np.float32)
        z[5, 1, 2] = value
        np.save(d / f"{name}.npy", z)
    np.save(d / "object.npy", np.array([Touch(d / "UNPICKLED")] * 4, dtype=object), allow_pickle=True)
    (d / "text.npy").write_text("0.5 0.25\n")
    (d / "empty.npy").write_bytes(b"")
    (d / "pickled.npy").write_bytes(pickle.dumps(np.zeros((128, 4, 4), np.float32)))
    with open(d / "huge.npy", "wb") as f:  # (128, 512, 512) zeros would decode to 8192x8192: a sparse file
        np.lib.format.write_array_header_1_0(f, {"descr": "<f2", "fortran_order": False, "shape": (128, 512, 512)})
        f.truncate(f.tell() + 128 * 512 * 512 * 2)
    # weights
    good = load_file(str(d / "w1.safetensors"))
    meta = model_config(Autoencoder(1))
    torch.save({"encoder.0.weight": Touch(d / "UNPICKLED")}, d / "pickle.safetensors")
    (d / "text.safetensors").write_text("{not weights}")
    (d / "empty.safetensors").write_bytes(b"")
    save_file({k: v for k, v in good.items() if k != "decoder.1.weight"}, str(d / "lacking.safetensors"), metadata=meta)
    save_file(good | {"decoder.1.weight": torch.zeros(5, 5)}, str(d / "misshaped.safetensors"), metadata=meta)
    save_file(good, str(d / "claims-width2.safetensors"), metadata=meta | {"channel_multiplier": "2", "width": "2"})
    old_names = {k: v for k, v in meta.items() if k != "channel_multiplier"}  # written before the rename: width alone
    save_file(good, str(d / "claims-width2-old.safetensors"), metadata=old_names | {"width": "2"})
    save_file(good, str(d / "no-metadata.safetensors"))
    # datasets and other things in the way
    for i in range(3):
        write_image(d / "data" / f"img{i}.png", photo_like(rng), format="PNG")
    (d / "empty-data").mkdir()
    for name in ("a.png", "b.jpg", "c.png"):
        (d / "unreadable-data" / name).parent.mkdir(exist_ok=True)
        (d / "unreadable-data" / name).write_text("nope")
    (d / "a-file").write_text("a regular file where a folder would have to be\n")
    return d


def cli(*args):
    """autoenc ARGS in this process: (exit code, stderr lines). A traceback would surface as result.exception."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr.strip().splitlines()


def one_line_error(*args, says=()):
    code, lines = cli(*args)
    assert code != 0, f"autoenc {' '.join(map(str, args))} succeeded"
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for words in says:
        assert words in lines[0], (words, lines[0])
    return lines[0]


@pytest.fixture
def inputs(files, monkeypatch, tmp_path):
    """Run in the inputs folder (messages name files as given); outputs go to tmp_path."""
    monkeypatch.chdir(files)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return files


# ---------------------------------------------------------------- pictures in

@pytest.mark.parametrize("name, problem", [
    ("missing.png", "no such file"), ("empty.png", "empty file"), ("truncated.png", "truncated"),
    ("truncated.jpg", "truncated"), ("text.png", "not an image"), ("bomb.png", "decompression bomb"),
    ("folder.png", "no image files"),  # a folder is searched for pictures (this one has none)
])
def test_bad_images_for_encode(inputs, tmp_path, name, problem):
    one_line_error("encode", name, "-w", "w1.safetensors", "-o", tmp_path / "z.npy", says=(name, problem))
    assert not (tmp_path / "z.npy").exists()


def test_every_image_mode_is_accepted_and_converted(inputs, tmp_path):
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(photo_like(rng))
    pictures = {"gray.png": rgb.convert("L"), "palette.png": rgb.convert("P"), "alpha.png": rgb.convert("RGBA"),
                "gray-alpha.png": rgb.convert("LA"), "cmyk.jpg": rgb.convert("CMYK"),
                "16bit.png": Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)}
    for name, img in pictures.items():
        img.save(tmp_path / name)
    code, lines = cli("encode", *(tmp_path / n for n in pictures), "-w", "w1.safetensors", "-o", tmp_path / "latents")
    assert code == 0, lines
    for name in pictures:
        z = np.load(tmp_path / "latents" / (Path(name).stem + ".npy"), allow_pickle=False)
        assert z.shape == (128, 4, 4) and np.isfinite(z).all()


# ---------------------------------------------------------------- latents in

@pytest.mark.parametrize("name, problem", [
    ("missing.npy", "no such file"), ("shape.npy", "expected (128, H, W)"), ("nan.npy", "NaN"), ("inf.npy", "inf"),
    ("object.npy", "object dtype"), ("text.npy", "not a .npy"), ("empty.npy", "not a .npy"),
    ("pickled.npy", "not a .npy"), ("wide.npy", "weights of channel multiplier 1"), ("huge.npy", "pixel limit"),
])
def test_bad_latents_for_decode(inputs, tmp_path, name, problem):
    one_line_error("decode", name, "-w", "w1.safetensors", "-o", tmp_path / "out.png", says=(name, problem))
    assert not (tmp_path / "out.png").exists()
    assert not (inputs / "UNPICKLED").exists()


@pytest.mark.parametrize("name, problem", [
    ("object.npy", "object dtype"), ("text.npy", "neither autoenc weights"), ("pickle.safetensors", "neither autoenc weights"),
    ("missing.npy", "no such file"), ("folder.png", "directory"),
])
def test_bad_files_for_info(inputs, name, problem):
    one_line_error("info", name, says=(name, problem))
    assert not (inputs / "UNPICKLED").exists()


# ---------------------------------------------------------------- weights in

BAD_WEIGHTS = [
    ("pickle.safetensors", "not a safetensors"), ("text.safetensors", "not a safetensors"),
    ("empty.safetensors", "not a safetensors"), ("missing.safetensors", "no such"),
    ("lacking.safetensors", "missing tensor decoder.1.weight"), ("misshaped.safetensors", "has shape (5, 5)"),
    ("claims-width2.safetensors", "for channel multiplier 2"),
    ("claims-width2-old.safetensors", "for channel multiplier 2"), ("no-metadata.safetensors", "without autoenc metadata"),
]


@pytest.mark.parametrize("command", ["encode", "decode", "eval"])
@pytest.mark.parametrize("name, problem", BAD_WEIGHTS)
def test_bad_weights_for_every_command(inputs, tmp_path, command, name, problem):
    args = {"encode": ["good.png", "-o", tmp_path / "z.npy"], "decode": ["good.npy", "-o", tmp_path / "x.png"],
            "eval": ["data", "--worst-png", tmp_path / "worst.png"]}[command]
    one_line_error(command, *args, "-w", name, says=(name, problem))
    assert not list(tmp_path.glob("*.*"))  # nothing written
    assert not (inputs / "UNPICKLED").exists()  # the pickle was refused, never loaded


def test_a_pickle_is_never_unpickled_by_safetensors(inputs, tmp_path):
    from safetensors import SafetensorError
    with pytest.raises(SafetensorError):
        load_file(str(inputs / "pickle.safetensors"))
    assert not (inputs / "UNPICKLED").exists()
    # ... while a pickle loader does run it: the test file really is hostile
    hostile = tmp_path / "copy.pt"
    hostile.write_bytes((inputs / "pickle.safetensors").read_bytes())
    torch.load(hostile, weights_only=False)
    assert (inputs / "UNPICKLED").exists()
    (inputs / "UNPICKLED").unlink()


def test_latents_of_another_width_are_refused_and_accepted_by_their_own(inputs, tmp_path):
    one_line_error("decode", "good.npy", "-w", "w2.safetensors", "-o", tmp_path / "x.png",
                   says=("good.npy", "expected (256, H, W)", "weights of channel multiplier 2"))
    code, lines = cli("decode", "wide.npy", "-w", "w2.safetensors", "-o", tmp_path / "x.png")
    assert code == 0 and (tmp_path / "x.png").is_file(), lines


# ---------------------------------------------------------------- outputs

def test_output_folders_that_cannot_be_created(inputs, tmp_path):
    blocked = "a-file/sub/out"
    one_line_error("encode", "good.png", "-w", "w1.safetensors", "-o", f"{blocked}.npy", says=(blocked, "a-file is a file"))
    one_line_error("decode", "good.npy", "-w", "w1.safetensors", "-o", f"{blocked}.png", says=(blocked, "a-file is a file"))
    one_line_error("eval", "data", "-w", "w1.safetensors", "--worst-png", f"{blocked}.png", says=(blocked, "a-file is a file"))
    one_line_error("train", "data", "--out", blocked, "--max-steps", 1, says=(blocked, "a-file is a file"))
    one_line_error("train", "data", "--out", "a-file", "--max-steps", 1, says=("a-file", "is a file"))
    one_line_error("train", "data", "--out", "data/run", "--max-steps", 1, says=("data/run", "inside the dataset"))
    assert not (inputs / "data" / "run").exists()
    one_line_error("eval", "data", "-w", "w1.safetensors", "--worst-png", "folder.png", says=("folder.png", "is a directory"))


def test_an_output_never_replaces_an_input(inputs, tmp_path):
    before = (inputs / "good.png").read_bytes()
    one_line_error("encode", "good.png", "-w", "w1.safetensors", "-o", "good.png", says=("good.png", "is also an input"))
    assert (inputs / "good.png").read_bytes() == before
    one_line_error("decode", "good.npy", "-w", "w1.safetensors", "-o", "./good.npy", says=("good.npy", "is also an input"))


def test_an_existing_output_file_is_replaced_whole(inputs, tmp_path):
    """The documented policy: outputs that exist are replaced, atomically; no temporary file stays behind."""
    target = tmp_path / "z.npy"
    target.write_bytes(b"an older file")
    for image in ("good.png", "good.jpg"):
        code, lines = cli("encode", image, "-w", "w1.safetensors", "-o", target)
        assert code == 0, lines
        assert np.load(target, allow_pickle=False).shape == (128, 4, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.npy", "z.npy.json"]


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"the old weights")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"the old weights"
    assert list(tmp_path.iterdir()) == [target]
    (tmp_path / "taken").mkdir()
    with pytest.raises(AutoencError, match="taken: is a directory, not a regular file; not replacing it"):
        write_bytes_atomic(tmp_path / "taken", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "taken"]


# ---------------------------------------------------------------- training input and options

@pytest.mark.parametrize("data, problem", [
    ("missing-data", "no such file or directory"), ("good.png", "is a file"), ("empty-data", "no images found"),
    ("unreadable-data", "could be read"),
])
def test_bad_datasets_for_train_and_eval(inputs, tmp_path, data, problem):
    one_line_error("train", data, "--out", tmp_path / "run", "--max-steps", 1, says=(data, problem))
    if data != "unreadable-data":  # eval reads unreadable files only to skip them: a different wording
        one_line_error("eval", data, "-w", "w1.safetensors", "--worst-png", tmp_path / "w.png", says=(data,))


@pytest.mark.parametrize("option, value", [
    ("--batch-size", 0), ("--batch-size", -4), ("--batch-size", 10**6), ("--batch-size", "abc"), ("--lr", -1),
    ("--lr", 0), ("--lr", "nan"), ("--lr", "inf"), ("--lr", "fast"), ("--epochs", 0), ("--channel-multiplier", 0), ("--width", 17),
    ("--max-steps", 0), ("--warmup-steps", -1), ("--save-every", 0), ("--save-minutes", 0), ("--save-minutes", "nan"),
    ("--seed", -1), ("--seed", 2**70), ("--device", "gpu9"), ("--precision", "fp8"), ("--fraction", 0),
    ("--fraction", 1.5), ("--color", "hsv"),
])
def test_nonsense_training_options(inputs, tmp_path, option, value):
    one_line_error("train", "data", "--out", tmp_path / "run", "--max-steps", 1, "--batch-size", 2, option, value,
                   says=(option,))
    assert not (tmp_path / "run" / "state.safetensors").exists()


@pytest.mark.parametrize("args, option", [
    (["encode", "good.png", "--resize", 0], "--resize"), (["encode", "good.png", "--resize", -3], "--resize"),
    (["encode", "good.png", "--dtype", "int4"], "--dtype"), (["eval", "data", "--limit", 0], "--limit"),
    (["eval", "data", "--limit", -2], "--limit"), (["eval", "data", "--device", "gpu9"], "--device"),
    (["bench", "data", "--epochs", 0], "--epochs"), (["bench", "data", "--naive-steps", -1], "--naive-steps"),
])
def test_nonsense_options_of_the_other_commands(inputs, tmp_path, args, option):
    where = {"encode": ["-w", "w1.safetensors", "-o", tmp_path / "z.npy"],
             "eval": ["-w", "w1.safetensors", "--worst-png", tmp_path / "w.png"], "bench": []}[args[0]]
    one_line_error(*args, *where, says=(option,))


def test_resume_without_a_state_and_a_state_that_is_a_pickle(inputs, tmp_path):
    run = tmp_path / "run"
    one_line_error("train", "data", "--out", run, "--resume", says=("state.safetensors", "no training state"))
    run.mkdir()
    torch.save({"step": Touch(inputs / "UNPICKLED")}, run / "state.safetensors")
    one_line_error("train", "data", "--out", run, "--resume", says=("state.safetensors", "damaged training state"))
    assert not (inputs / "UNPICKLED").exists()


@pytest.mark.parametrize("info", [{"config": {}}, {"step": "7", "config": {}}, {"step": 7},
                                  {"step": 7, "config": {}, "recoveries": 1.5},
                                  {"step": 7, "config": {}, "guard_snapshots": ["a"]}, {"step": 7, "config": {}, "guard_recent": "x"}],
                         ids=["no-step", "text-step", "no-config", "odd-count", "odd-snapshots", "odd-recent"])
def test_a_state_whose_info_lacks_what_the_loop_reads_is_one_line(inputs, tmp_path, info):
    """A whole safetensors file whose header holds a wrong info: `train --resume` and `info` refuse it in one line."""
    from autoenc_cli.training.checkpoint import save_state
    model = torch.nn.Linear(2, 2)
    run = tmp_path / "run"
    run.mkdir()
    save_state(run / "state.safetensors", model, FusedAdam(model.parameters(), lr=0.1), info)
    one_line_error("train", "data", "--out", run, "--resume", says=("state.safetensors", "damaged training state"))
    one_line_error("info", run / "state.safetensors", says=("state.safetensors", "damaged training state"))


def test_a_fresh_run_never_overwrites_a_saved_one(inputs, tmp_path):
    run = tmp_path / "run"
    code, lines = cli("train", "data", "--out", run, "--max-steps", 2, "--batch-size", 2, "--precision", "fp32")
    assert code == 0, lines
    state = (run / "state.safetensors").read_bytes()
    one_line_error("train", "data", "--out", run, "--max-steps", 2, says=(str(run), "--resume"))
    assert (run / "state.safetensors").read_bytes() == state
    (run / ".state.safetensors.x1y2.tmp").write_bytes(b"left by a killed run")
    code, lines = cli("train", "data", "--out", run, "--max-steps", 3, "--resume")
    assert code == 0, lines
    assert not list(run.glob(".*.tmp"))  # stale temporaries of killed runs are swept


def test_plot_bad_logs_and_outputs(inputs, tmp_path):
    one_line_error("plot", "missing-run", says=("missing-run", "no such log"))
    (tmp_path / "log.csv").write_bytes(b"\x89PNG garbage\xff\n")
    one_line_error("plot", tmp_path / "log.csv", says=("log.csv", "unreadable log"))
    (tmp_path / "log.csv").write_text("step,train_loss\n1,0.5\n2,0.4\n")
    one_line_error("plot", tmp_path / "log.csv", "-o", "a-file/curve.png", says=("a-file/curve.png", "a-file is a file"))
    one_line_error("plot", tmp_path, "-o", tmp_path / "log.csv", says=("log.csv", "is the log itself"))
    assert (tmp_path / "log.csv").read_text().startswith("step,")


def test_bench_naive_reference_skips_unreadable_files(inputs):
    assert naive_reference([inputs / "text.png", inputs / "good.png"], steps=1, batch=2) > 0
    with pytest.raises(AutoencError, match="no readable image"):
        naive_reference([inputs / "text.png"], steps=1, batch=2)


# ---------------------------------------------------------------- the installed command itself

def assert_one_line(proc, *says):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for words in says:
        assert words in lines[0], (words, lines[0])


@pytest.mark.slow
def test_the_installed_command_answers_one_line(files, tmp_path):
    assert_one_line(run_cli("encode", files / "bomb.png", "-w", files / "w1.safetensors", "-o", tmp_path / "z.npy", check=False, process=True),
                    "bomb.png", "decompression bomb")
    assert_one_line(run_cli("decode", files / "object.npy", "-w", files / "pickle.safetensors", check=False, process=True),
                    "pickle.safetensors", "not a safetensors")
    assert_one_line(run_cli("decode", files / "object.npy", "-w", files / "w1.safetensors", "-o", tmp_path / "x.png", check=False, process=True),
                    "object.npy", "object dtype")
    proc = run_cli("train", files / "data", "--batch-size", "abc", check=False, process=True)
    assert_one_line(proc, "--batch-size")
    assert proc.returncode == 2  # a usage error, as for any command-line tool
    assert not (files / "UNPICKLED").exists()


def test_resumed_optimizer_state_takes_the_parameters_layout(tmp_path):
    """Fused Adam walks a parameter and its moments in memory order: restoring the (contiguous) saved
    moments beside channels_last parameters used to send a resumed run off its trajectory."""
    from autoenc_cli.training.checkpoint import load_state, save_state
    x = torch.randn(2, 3, 64, 64)

    def fresh():
        torch.manual_seed(0)
        model = Autoencoder(1)
        init_weights(model)
        model.to(memory_format=torch.channels_last)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def step(model, opt):
        loss = ((model(x) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    model, opt = fresh()
    for _ in range(3):
        step(model, opt)
    save_state(tmp_path / "state.safetensors", model, opt, {"step": 3, "config": {}})
    again, opt_again = fresh()
    load_state(tmp_path / "state.safetensors", again, opt_again)
    for _ in range(2):
        step(model, opt)
        step(again, opt_again)
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    """Atomic writes go through mkstemp (0600); the result must not stay private to its owner."""
    from autoenc_cli.model.autoencoder import Autoencoder
    from autoenc_cli.model.weights import save_weights

    umask = os.umask(0o022)
    try:
        save_weights(Autoencoder(), tmp_path / "w.safetensors")  # safetensors re-creates the temp file
        assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_decoding_workers_end_with_a_killed_parent():
    """A SIGKILL of autoenc while it decodes (a torchrun restart, the OOM killer) leaves no pool worker behind."""
    code = ("import time; from autoenc_cli.data.reading import worker_pool; pool = worker_pool(2); list(pool.map(abs, [1, 2, 3]));"
            "print(*pool._processes, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.05)
    assert not any(alive(p) for p in workers)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def test_photo_options_on_64x64_pictures_are_refused_not_ignored(tiny_imagenet, tmp_path):
    from test_first_hour import invoke
    result = invoke("train", tiny_imagenet, "--out", tmp_path / "run", "--rotate", "--max-zoom", 2, "--max-steps", 1)
    assert result.exit_code == 1 and "--max-zoom, --rotate only shape windows of larger photos" in \
        " ".join(result.output.split()), result.output


def test_init_from_a_training_state_names_the_weights_beside_it(tiny_imagenet, tmp_path):
    from test_first_hour import invoke
    run = tmp_path / "run"
    assert invoke("train", tiny_imagenet, "--out", run, "--max-steps", 1, "--batch-size", 4).exit_code == 0
    result = invoke("train", tiny_imagenet, "--out", tmp_path / "b", "--init", run / "state.safetensors", "--max-steps", 1)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and f"is a training state (for --resume), not weights; give the weights saved beside it, {run / 'model.safetensors'}" in text


def test_outputs_replace_a_hard_link_and_leave_its_twin_alone(tmp_path):
    """Every output is written beside and renamed over its name (never written in place): a file that shares the
    output's inode through a hard link keeps its bytes, and a save that fails half-way leaves the old file whole."""
    from autoenc_cli.training.checkpoint import read_state, save_state
    twin = write_image(tmp_path / "keep.png", photo_like(np.random.default_rng(8)), format="PNG")
    source = write_image(tmp_path / "in.png", photo_like(np.random.default_rng(9)), format="PNG")
    kept = twin.read_bytes()
    for name in ("out.png", "z.npy"):  # not links of an input: those are refused (codec/inputs.same_file)
        os.link(twin, tmp_path / name)
    run_cli("encode", source, "-o", tmp_path / "z.npy")
    run_cli("decode", tmp_path / "z.npy", "-o", tmp_path / "out.png")
    assert twin.read_bytes() == kept and (tmp_path / "out.png").read_bytes() != kept

    model = torch.nn.Linear(2, 2)
    state = tmp_path / "state.safetensors"
    save_state(state, model, FusedAdam(model.parameters(), lr=0.1), {"step": 1, "config": {}})
    os.link(state, tmp_path / "state-twin")
    before = state.read_bytes()

    def half_written(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("autoenc_cli.training.checkpoint.save_file", half_written)
        with pytest.raises(AutoencError, match="No space left"):
            save_state(state, model, FusedAdam(model.parameters(), lr=0.1), {"step": 2, "config": {}})
    assert state.read_bytes() == before and read_state(state)[1]["step"] == 1
    assert (tmp_path / "state-twin").read_bytes() == before and not list(tmp_path.glob(".*.tmp"))
