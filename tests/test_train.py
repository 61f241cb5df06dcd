import signal

import numpy as np
import pytest
import torch
from conftest import make_tiny_imagenet

from autoenc_cli.training.checkpoint import read_log
from autoenc_cli.data.cache import cached_images
from autoenc_cli.data.splits import split_dataset
from autoenc_cli.model.autoencoder import Autoencoder
from autoenc_cli.model.autoencoder import swap_relus
from autoenc_cli.training.train import TrainConfig, TrainingInterrupted, leak_at, lr_at, train, validate
from autoenc_cli.model.weights import load_model, provenance


def quiet(*_):
    pass


@pytest.mark.slow
def test_training_really_lowers_the_loss(tmp_path):
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=4, val=2, corrupt=False)
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=10_000, max_steps=300, batch_size=8,
                      warmup_steps=30, log_every=10, precision="fp32")
    result = train(cfg, say=quiet)
    losses = [float(r["train_loss"]) for r in result.history if r.get("train_loss")]
    assert losses[-1] < 0.3 * losses[0], losses
    assert np.isfinite(result.val_psnr)
    model, meta = load_model(result.weights)
    assert meta["channel_multiplier"] == meta["width"] == "1" and provenance(meta)["steps"] == 300


def test_resume_continues_from_saved_step_on_the_same_trajectory(tmp_path):
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=8, val=2, corrupt=False)
    common = dict(data=str(data), epochs=100, batch_size=4, warmup_steps=5, log_every=5, save_every=10, precision="fp32", seed=3)
    train(TrainConfig(out=str(tmp_path / "full"), max_steps=40, **common), say=quiet)
    with pytest.raises(TrainingInterrupted, match="--resume"):  # Ctrl-C after step 17
        train(TrainConfig(out=str(tmp_path / "part"), max_steps=40, **common), say=quiet, progress_factory=lambda: CtrlCAt(17))
    resumed = train(TrainConfig(out=str(tmp_path / "part"), max_steps=40, **common), resume=True, say=quiet)
    assert resumed.step == 40
    a = read_log(tmp_path / "full" / "log.csv")
    b = read_log(tmp_path / "part" / "log.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    np.testing.assert_allclose([float(r["train_loss"]) for r in a], [float(r["train_loss"]) for r in b], rtol=1e-5)


def test_the_default_warm_up_fits_the_run_and_a_resumed_run_keeps_its_schedule(tmp_path):
    """Issue 37: the warm-up was 200 steps whatever the run's length; it is 5% of the run now, saved with the run."""
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=8, val=2, corrupt=False)
    common = dict(data=str(data), epochs=100, max_steps=60, batch_size=4, log_every=5, save_every=10, precision="fp32", seed=3)
    full = train(TrainConfig(out=str(tmp_path / "full"), **common), say=quiet)
    with pytest.raises(TrainingInterrupted):
        train(TrainConfig(out=str(tmp_path / "part"), **common), say=quiet, progress_factory=lambda: CtrlCAt(17))
    train(TrainConfig(out=str(tmp_path / "part"), **common), resume=True, say=quiet)
    assert provenance(load_model(full.weights)[1])["warmup_steps"] == 3  # 5% of 60
    a = read_log(tmp_path / "full" / "log.csv")
    b = read_log(tmp_path / "part" / "log.csv")
    rates = [float(r["lr"]) for r in a if r.get("lr")]
    assert rates == [float(r["lr"]) for r in b if r.get("lr")]  # the resumed run follows the same schedule
    assert rates == sorted(rates, reverse=True) and rates[-1] < 0.01 * rates[0]  # past its peak by step 5, then down


def test_log_rows_reach_the_file_at_every_window_and_only_through_the_atomic_writer(tmp_path, monkeypatch):
    """Issue 37: log.csv was rewritten only at checkpoints. Every write must go through write_text_atomic (a temporary
    file renamed over log.csv), so that a reader, or a crash, never sees it half-written."""
    from autoenc_cli.training import checkpoint
    monkeypatch.setattr(checkpoint, "LOG_WRITE_SECONDS", 0.0)  # every window (a slow CPU's windows are seconds apart)
    written, atomic = [], checkpoint.write_text_atomic

    def spy(path, text):
        if path.name == "log.csv":
            written.append(text.count("\n") - 1)  # rows below the header
        atomic(path, text)
    monkeypatch.setattr(checkpoint, "write_text_atomic", spy)
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=8, val=2, corrupt=False)  # 4 steps an epoch
    train(TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=100, max_steps=12, batch_size=4, log_every=1,
                      save_every=1000, save_minutes=1000.0, precision="fp32"), say=quiet)
    assert set(range(1, 13)) <= set(written), written  # a row per step reached the file, not only the epochs' saves
    assert len(read_log(tmp_path / "run" / "log.csv")) == 12


class CtrlCAt:
    """A stand-in progress display that presses Ctrl-C when training reaches a given step (`times` times)."""

    cache_progress = None

    def __init__(self, step, times: int = 1):
        self.step, self.times = step, times

    def start(self, total, step):
        def update(step, loss, epoch):
            if step == self.step:
                for _ in range(self.times):
                    signal.raise_signal(signal.SIGINT)
        return update

    def stop(self, keep=True):
        pass


def test_the_rate_warms_up_from_its_first_step_then_follows_a_cosine_to_zero():
    cfg = TrainConfig(data="unused", lr=0.01, warmup_steps=10)
    assert lr_at(0, 110, cfg) == pytest.approx(0.001)  # the first step trains: a rate of 0 would waste it
    assert lr_at(9, 110, cfg) == pytest.approx(0.01) and lr_at(10, 110, cfg) == pytest.approx(0.01)
    assert lr_at(60, 110, cfg) == pytest.approx(0.005) and lr_at(110, 110, cfg) == pytest.approx(0.0, abs=1e-12)
    assert all(lr_at(s, 110, cfg) >= lr_at(s + 1, 110, cfg) for s in range(10, 110))


def test_a_second_ctrl_c_aborts_without_saving(tmp_path):
    """The first Ctrl-C asks for a save at the end of the step; a second one before it aborts at once: no state,
    and KeyboardInterrupt (the CLI's "interrupted", exit 130), not the first one's TrainingInterrupted."""
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=4, val=2, corrupt=False)
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=1000, max_steps=20, batch_size=2,
                      save_every=1000, precision="fp32")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, say=quiet, progress_factory=lambda: CtrlCAt(2, times=2))
    assert not (tmp_path / "run" / "state.safetensors").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler was given back
    with pytest.raises(TrainingInterrupted, match="interrupted at step 3"):  # one Ctrl-C: saved after the next step
        train(cfg, say=quiet, progress_factory=lambda: CtrlCAt(2))
    assert (tmp_path / "run" / "state.safetensors").exists()


@pytest.mark.slow
def test_relu_leak_anneals_to_the_seeds_plain_relu(tmp_path):

    cfg = TrainConfig(data="unused", relu_leak=0.2, leak_until=0.5)
    assert leak_at(0, 100, cfg) == pytest.approx(0.2)
    assert leak_at(25, 100, cfg) == pytest.approx(0.1)
    assert leak_at(50, 100, cfg) == leak_at(99, 100, cfg) == 0.0
    model = Autoencoder()
    x = torch.randn(2, 3, 64, 64)
    before = model(x)
    relus = swap_relus(model, 0.2)
    assert len(relus) == 16 and not any(isinstance(m, torch.nn.ReLU) for m in model.modules())
    assert not torch.allclose(model(x), before)
    assert swap_relus(model, 0.0) == [] and sum(isinstance(m, torch.nn.ReLU) for m in model.modules()) == 16
    torch.testing.assert_close(model(x), before)

    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=4, val=2, corrupt=False)
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=10_000, max_steps=60, batch_size=8,
                               warmup_steps=5, log_every=10, precision="fp32", relu_leak=0.3, leak_until=0.5), say=quiet)
    plain, _ = load_model(result.weights)  # the saved weights belong to the seed's plain-ReLU network
    assert any(isinstance(m, torch.nn.ReLU) for m in plain.modules())
    val = cached_images(split_dataset(data).val).pixels
    _, psnr, _ = validate(plain.to(memory_format=torch.channels_last), val, torch.device("cpu"), "fp32")
    assert psnr == pytest.approx(result.val_psnr, abs=1e-3)  # validated as plain ReLU, not with the leak


def test_default_batch_follows_the_device_and_the_recipe_rate_scales_with_it():
    from autoenc_cli.training.config import CUDA_BATCH, DEFAULT_BATCH, RECIPES
    scratch, fine = RECIPES["scratch"]["lr"], RECIPES["fine-tune"]["lr"]
    on_cpu = TrainConfig(data="d").with_recipe_defaults("cpu")
    assert on_cpu.batch_size == DEFAULT_BATCH == 32 and on_cpu.lr == scratch  # the recipes were measured at batch 32
    on_gpu = TrainConfig(data="d", init="default").with_recipe_defaults("cuda")
    assert on_gpu.batch_size == CUDA_BATCH == 512 and on_gpu.lr == pytest.approx(fine * 4)  # sqrt(512 / 32)
    given = TrainConfig(data="d", batch_size=128, lr=5e-4).with_recipe_defaults("cuda")
    assert given.batch_size == 128 and given.lr == 5e-4  # what the user names is kept
    assert TrainConfig(data="d", batch_size=8).with_recipe_defaults("cpu").lr == pytest.approx(scratch / 2)
    # from scratch the rate grows no higher with the batch: the sqrt rule's 8e-3 at 512 blew up on an H200
    assert TrainConfig(data="d").with_recipe_defaults("cuda").lr == scratch
    # under torchrun the global batch counts: 8 processes at 64 take the rate of 512
    assert TrainConfig(data="d", batch_size=64, init="default").with_recipe_defaults("cuda", 8).lr == pytest.approx(fine * 4)
