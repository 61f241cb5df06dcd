"""Training survives interruption: kill -9 at random moments never leaves a corrupt model, state or log,
and --resume loses at most the work since the last save, continuing the very same trajectory."""

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import autoenc_command, photo_like, write_image
from safetensors.torch import load_file

from autoenc_cli.training.checkpoint import read_log
from autoenc_cli.data.splits import split_dataset
from autoenc_cli.training.train import TrainConfig, train
from autoenc_cli.model.weights import load_model, provenance, read_metadata

STEPS, BATCH, SAVE_EVERY, LOG_EVERY = 60, 4, 2, 50  # LOG_EVERY: TrainConfig's default, not a CLI option
KILLS = 4
COMMON = dict(epochs=1000, max_steps=STEPS, batch_size=BATCH, warmup_steps=10, seed=1, precision="fp32",
              save_every=SAVE_EVERY)


@pytest.fixture
def data(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(16):
        write_image(tmp_path / "data" / f"img{i:02d}.png", photo_like(rng), format="PNG")
    return tmp_path / "data"


def options(data: Path, run: Path, cache: Path) -> list[str]:
    args = ["train", str(data), "--out", str(run), "--cache-dir", str(cache)]
    for key, value in COMMON.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def start(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.Popen(autoenc_command() + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def saved_step(run: Path) -> int:
    """The step in the saved training state (-1 when there is none), read from its header."""
    state = run / "state.safetensors"
    return json.loads(read_metadata(state)["info"])["step"] if state.exists() else -1


def assert_intact(run: Path) -> None:
    """Whatever the moment of the kill, every file there is whole."""
    if (run / "state.safetensors").exists():
        assert load_file(str(run / "state.safetensors"))  # the whole file parses, every tensor in it
        assert saved_step(run) >= 0
    if (run / "model.safetensors").exists():
        load_model(run / "model.safetensors")
    if (run / "log.csv").exists():
        assert all(r["step"].isdigit() for r in read_log(run / "log.csv"))


def expected_log_steps(data: Path) -> list[int]:
    per_epoch = len(split_dataset(data).train) // BATCH
    return sorted({s for s in range(1, STEPS + 1) if s % per_epoch == 0 or s % LOG_EVERY == 0} | {STEPS})


@pytest.mark.slow  # about a minute on 2 idle cores: five process starts and 2 x 60 training steps
def test_sigkill_at_random_moments_then_resume_until_done(data, tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    seed = int(os.environ.get("AUTOENC_KILL_SEED", "20261126"))  # fixed, so a failure can be replayed; vary it by hand
    rng = random.Random(seed)
    history = []  # (saved step when started, saved step after the kill)
    for attempt in range(KILLS + 1):
        before = saved_step(run)
        proc = start(options(data, run, cache) + (["--resume"] if before >= 0 else []))  # no state yet: start afresh
        if attempt < KILLS:
            if attempt == 0:
                time.sleep(rng.uniform(0.0, 1.5))  # most likely before any state exists
            else:
                deadline = time.monotonic() + 120
                while saved_step(run) <= before and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)  # wait for a new save, then kill at a random moment after it
                time.sleep(rng.uniform(0.0, 1.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            assert_intact(run)
            assert saved_step(run) >= before, f"a save was lost (random seed {seed})"
            history.append((before, saved_step(run)))
            if proc.returncode == 0:  # it finished before the kill
                break
        else:
            _, stderr = proc.communicate(timeout=600)
            assert proc.returncode == 0, stderr
    assert sum(after > before for before, after in history) >= 2, (history, seed)  # killed mid-training, twice or more

    assert saved_step(run) == STEPS
    model, meta = load_model(run / "model.safetensors")
    assert provenance(meta)["steps"] == STEPS
    rows = read_log(run / "log.csv")
    steps = [int(r["step"]) for r in rows]
    assert steps == expected_log_steps(data), f"duplicated or missing steps (random seed {seed}, kills {history})"
    assert not list(run.glob(".*.tmp")) and not list((run / "samples").glob(".*.tmp"))

    # the same losses as one uninterrupted run: nothing was lost or done twice
    whole = train(TrainConfig(data=str(data), out=str(tmp_path / "whole"), cache_dir=str(cache), **COMMON), say=lambda *_: None)
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    np.testing.assert_allclose(losses, [float(r["train_loss"]) for r in whole.history if r["train_loss"]], rtol=1e-5)


def wait_for_training(proc: subprocess.Popen) -> str:
    """stderr up to the line that says training starts."""
    seen = ""
    while "training on" not in seen:
        line = proc.stderr.readline()
        assert line, f"autoenc train ended early:\n{seen}"
        seen += line
    return seen


@pytest.mark.slow
def test_ctrl_c_and_sigterm_save_the_state_and_say_how_to_resume(data, tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = options(data, run, cache)
    for sig, extra in ((signal.SIGINT, []), (signal.SIGTERM, ["--resume"])):
        proc = start(args + extra)
        wait_for_training(proc)
        time.sleep(1.0)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, stderr  # 130 for Ctrl-C, 143 for SIGTERM, as shells expect
        assert "Traceback" not in stderr and ("Ctrl-C again" in stderr) == (sig == signal.SIGINT)
        stopped = re.search(r"interrupted at step (\d+)", stderr)
        assert stopped and f"--out {run} --cache-dir {cache} --resume" in stderr, stderr  # every option needed
        assert saved_step(run) == int(stopped.group(1))  # the state was saved on the way out, at that very step
        assert_intact(run)
    proc = start(args + ["--resume"])
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == expected_log_steps(data)
