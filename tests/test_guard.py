"""The divergence guard (issue 31): a blow-up is recovered from and said, or ends in a one-line error naming --lr with
the last good weights kept; a run never ends "done" on a model no better than a flat colour."""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
from conftest import make_tiny_imagenet

from autoenc_cli.training.checkpoint import load_state, read_log
from autoenc_cli.training.guard import BROKEN_LOSS, FLAT_CHECK_STEPS, MAX_RECOVERIES, Diverged, Guard, flat_colour_psnr, judge
from autoenc_cli.training.optim import FusedAdam
from autoenc_cli.model.weights import load_model
from test_first_hour import invoke


def test_judge_names_what_is_wrong_and_lets_noise_pass():
    recent = [0.30, 0.32, 0.28, 0.31]
    assert judge(0.33, recent) is None and judge(1.0, recent) is None  # noise, and 3x: not a spike
    assert "median" in judge(1.5, recent)
    assert "nan" in judge(math.nan, recent) and "inf" in judge(math.inf, [])
    assert "outside any picture" in judge(BROKEN_LOSS * 2, [])  # pinned at the clamp, even in the first window
    assert judge(20.0, []) is None  # a fresh network's first loss is high, and nothing to compare with yet


def test_a_bad_window_brings_back_the_older_good_state_and_halves_the_rate():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 4)
    opt = FusedAdam(model.parameters(), lr=0.1)
    guard = Guard()
    guard.keep(0, model, opt)
    weights = {}
    for step, loss in ((50, 1.0), (100, 1.1)):
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
        assert guard.check(loss, step, model, opt) is None
        weights[step] = model.weight.detach().clone()
    model.weight.data.fill_(1e6)  # the blow-up
    event = guard.check(100.0 * 5, 150, model, opt)
    assert "back to the weights of step 50" in event and guard.lr_scale == 0.5
    assert torch.equal(model.weight, weights[50])  # the older one: the newer may already be on its way up
    assert all(torch.isfinite(v).all() for slots in opt.state.values() for v in slots.values())
    for i in range(MAX_RECOVERIES - 1):
        assert guard.check(math.nan, 200 + i, model, opt)
    with pytest.raises(Diverged) as stopped:
        guard.check(math.inf, 300, model, opt)
    assert stopped.value.good_step == 50 and torch.equal(model.weight, weights[50])


def test_flat_colour_psnr_is_the_mean_colour_s():
    flat = torch.full((2, 8, 8, 3), 100, dtype=torch.uint8).numpy()
    assert flat_colour_psnr(flat) == 100.0  # identical: the cap
    half = flat.copy()
    half[:, :4] = 120  # every pixel 10 off its mean of 110
    assert abs(flat_colour_psnr(half) - 20 * math.log10(255 / 10)) < 1e-6


def test_the_guard_saved_in_a_training_state_comes_back_whole(tmp_path):
    """Guard.saved -> state.safetensors -> Guard.restored: the recent losses, the rate's scale, the count and both
    snapshots (weights and Adam's moments) as they were, and the same decision on the next bad window."""
    from autoenc_cli.training.checkpoint import read_state, save_state
    torch.manual_seed(0)
    model, guard = torch.nn.Linear(4, 4), Guard()
    opt = FusedAdam(model.parameters(), lr=0.1)
    guard.keep(0, model, opt)
    for step, loss in ((2, 1.0), (4, 1.1)):
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
        guard.check(loss, step, model, opt)
    guard.check(math.nan, 6, model, opt)  # a recovery, to step 2
    for step, loss in ((8, 1.2), (9, 1.3)):
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
        if step == 8:
            guard.check(loss, step, model, opt)
    info, tensors = guard.saved(9)
    save_state(tmp_path / "state.safetensors", model, opt, {"step": 9, "config": {}, **info}, tensors)
    saved_tensors, saved_info, groups = read_state(tmp_path / "state.safetensors")
    model2 = torch.nn.Linear(4, 4)
    opt2 = FusedAdam(model2.parameters(), lr=0.1)
    load_state(tmp_path / "state.safetensors", model2, opt2)
    back = Guard.restored(saved_info, saved_tensors, 9, model2, opt2)
    assert list(back.recent) == list(guard.recent) == [1.0, 1.1, 1.2]
    assert (back.lr_scale, back.recoveries) == (guard.lr_scale, guard.recoveries) == (0.5, 1)
    assert [s.step for s in back.good] == [s.step for s in guard.good] == [2, 8]
    for a, b in zip(guard.good, back.good):
        assert all(torch.equal(x, y) for x, y in zip(a.model, b.model))
        assert a.optimizer.keys() == b.optimizer.keys()
        assert all(torch.equal(a.optimizer[i][k], b.optimizer[i][k]) for i in a.optimizer for k in a.optimizer[i])
    assert guard.check(1.3 * 5, 10, model, opt) == back.check(1.3 * 5, 10, model2, opt2)  # a spike: 5x the median
    assert torch.equal(model.weight, model2.weight) and torch.equal(model.weight, guard.good[0].model[0])


def test_a_rate_far_too_high_is_recovered_three_times_then_stops_with_the_last_good_weights(tiny_imagenet, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", tiny_imagenet, "--out", run, "--lr", 1, "--warmup-steps", 1, "--batch-size", 4,
                    "--epochs", 100, "--precision", "fp32")
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "done" not in text, text
    assert text.count("diverging at step") == MAX_RECOVERIES and "learning rate x 0.125 from here" in text
    assert "try a lower --lr (this run: 1)" in text and "Traceback" not in text
    events = [r for r in read_log(run / "log.csv") if r["event"]]
    assert len(events) == MAX_RECOVERIES + 1 and events[-1]["event"].startswith("stopped")
    model, meta = load_model(run / "model.safetensors")  # the last good weights, whole and loadable
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.fixture(scope="module")
def one_long_epoch(tmp_path_factory):
    """Pictures enough for a few hundred steps at batch 1 in one epoch (each epoch's end validates and saves)."""
    return make_tiny_imagenet(tmp_path_factory.mktemp("data") / "tiny", classes=2, per_class=150, val=2, corrupt=False)


def test_a_run_that_learnt_nothing_does_not_end_done(one_long_epoch, tmp_path):
    """A rate so low that the network stays at its random start: long enough to judge, no better than a flat colour."""
    result = invoke("train", one_long_epoch, "--out", tmp_path / "run", "--lr", 1e-12, "--warmup-steps", 0,
                    "--max-steps", FLAT_CHECK_STEPS, "--epochs", 1000, "--batch-size", 1,
                    "--precision", "fp32")
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "no better than a flat colour" in text and "done" not in text, text
    assert "try another --lr" in text


def test_a_short_run_that_is_not_yet_past_a_flat_colour_finishes_and_says_it_was_short(one_long_epoch, tmp_path):
    """A run too short to judge (past its warm-up, but under FLAT_CHECK_STEPS) is not called a failure, nor told to
    change --lr: it ends done, and says plainly that it was short and that more steps will help."""
    result = invoke("train", one_long_epoch, "--out", tmp_path / "run", "--lr", 1e-12, "--max-steps", 120,
                    "--epochs", 1000, "--batch-size", 1, "--precision", "fp32")
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "done: step 120" in text, text
    assert "no better than a flat colour" in text and "too short to judge" in text and "more steps will help" in text
    assert "--lr" not in text and "failed" not in text


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_under_torchrun_every_process_takes_the_same_decision(tmp_path):
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=8, val=2, corrupt=False)
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m", "torch.distributed.run"]
    cmd = launcher + ["--standalone", "--nproc_per_node=2", "-m", "autoenc_cli", "train", str(data), "--out",
                      str(tmp_path / "run"), "--lr", "1", "--warmup-steps", "1", "--batch-size", "2", "--epochs", "100",
                      "--precision", "fp32", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, COLUMNS="200"))
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and text.count("diverging at step") == MAX_RECOVERIES, text  # rank 0 says it, once
    assert text.count("try a lower --lr") == 1 and "Timeout" not in text and "timed out" not in text, text



def test_a_run_ending_below_its_best_keeps_the_best_weights_as_validated(tiny_imagenet, tmp_path):
    """finish()'s check, driven directly: the best validation's model (leaky slope included) goes to best.safetensors."""
    from autoenc_cli.training import train as loop
    from autoenc_cli.training.run import start_run
    cfg = loop.TrainConfig(data=str(tiny_imagenet), out=str(tmp_path / "run"), max_steps=4, batch_size=4, precision="fp32")
    run, s = start_run(cfg, False, lambda *_: None, None)
    loop.set_schedule(run, s)  # the leak's first slope, 0.5
    loop.end_epoch(run, s, lambda *_: None)
    best = s.best_psnr
    s.val_psnr = best - 1.0
    error = loop.ended_below_best(run, s)
    assert "1.00 dB below its best" in str(error) and "best.safetensors" in str(error)
    model, meta = load_model(tmp_path / "run" / "best.safetensors")
    assert float(meta["relu_slope"]) == 0.5 and abs(json.loads(meta["provenance"])["val_psnr"] - round(best, 3)) < 1e-9


def guard_run(tmp_path, lr: float, out: str, resume: bool = False, stop_at: int | None = None):
    """A run at a rate that blows up on tiny data (log every 2 steps: the guard judges often); stop_at stops it there
    through the loop's own seam, as Ctrl-C would (saved, resumable). Returns what the run raised, if anything."""
    from autoenc_cli.training.train import TrainConfig, TrainingFailed, TrainingInterrupted, train
    if not (tmp_path / "data").exists():
        make_tiny_imagenet(tmp_path / "data", per_class=20, corrupt=False)
    cfg = TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / out), cache_dir=str(tmp_path / "cache"), lr=lr,
                      warmup_steps=6, batch_size=4, epochs=100, max_steps=10, log_every=2, precision="fp32")
    try:
        train(cfg, resume=resume, say=lambda *_: None, should_stop=(lambda step: step == stop_at) if stop_at else None)
    except (TrainingFailed, TrainingInterrupted) as e:
        return e
    return None


@pytest.mark.parametrize("lr", [0.1, 0.2])
def test_a_run_interrupted_after_recoveries_resumes_on_the_same_trajectory(tmp_path, lr):
    """Interrupted after the guard recovered (in mid-window at step 3, and at step 6, a log step with a recovery), the
    resumed run logs every loss, rate and event of the uninterrupted one: the guard's snapshots, recent losses, rate
    scale and recovery count came back with the state. At lr 0.1 the step-4 blow-up goes back past the healthy
    step-2 snapshot to the step-0 one; at lr 0.2 the fourth blow-up stops the run, as the uninterrupted one stops."""
    whole = guard_run(tmp_path, lr, "whole")
    full = read_log(tmp_path / "whole" / "log.csv")
    events = [r["event"] for r in full if r["event"]]
    assert len(events) >= MAX_RECOVERIES and all("back to the weights of step 0" in e for e in events[:MAX_RECOVERIES])
    assert (lr == 0.2) == isinstance(whole, Exception) and (lr == 0.2) == events[-1].startswith("stopped")

    first = guard_run(tmp_path, lr, "part", stop_at=3)
    assert "interrupted at step 3" in str(first)
    second = guard_run(tmp_path, lr, "part", resume=True, stop_at=6)  # a log step: its row is in the saved log
    assert "interrupted at step 6" in str(second)
    last = guard_run(tmp_path, lr, "part", resume=True)
    assert str(last) == str(whole).replace("/whole/", "/part/")  # the same end: done, or stopped at the same step
    part = read_log(tmp_path / "part" / "log.csv")
    assert [(r["step"], r["lr"], r["event"]) for r in part] == [(r["step"], r["lr"], r["event"]) for r in full]
    np.testing.assert_allclose([float(r["train_loss"]) for r in part if r["train_loss"]],
                               [float(r["train_loss"]) for r in full if r["train_loss"]], rtol=1e-5)
