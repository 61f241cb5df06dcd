"""The CUDA path, run by benchmarks/gpu_check.py on a GPU machine (`pytest -m gpu`); skipped where there is no GPU."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import make_tiny_imagenet, photo_like

from autoenc_cli.codec.encoding import reconstruct_picture
from autoenc_cli.model.hardware import pick_precision
from autoenc_cli.training.train import TrainConfig, train
from autoenc_cli.model.weights import load_model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def quiet(*_):
    pass


def test_training_and_resume_on_cuda(tmp_path):
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=8, val=2, corrupt=False)
    common = dict(data=str(data), out=str(tmp_path / "run"), epochs=1000, batch_size=4, device="cuda", log_every=5)
    first = train(TrainConfig(max_steps=10, **common), say=quiet)
    again = train(TrainConfig(max_steps=20, **common), resume=True, say=quiet)
    assert first.step == 10 and again.step == 20 and np.isfinite(again.val_psnr)


def test_encode_decode_on_cuda_matches_the_cpu():
    model, _ = load_model(__import__("autoenc_cli.model.weights", fromlist=["x"]).default_weights_path())
    pixels = photo_like(np.random.default_rng(0), 128)
    on_cpu = reconstruct_picture(model, pixels).astype(int)
    on_gpu = reconstruct_picture(model.to("cuda"), pixels).astype(int)
    diff = np.abs(on_cpu - on_gpu)
    assert diff.max() <= 2 and diff.mean() < 0.05  # float order differs (TF32/cuDNN): at most 2 levels, rarely


def test_auto_precision_is_bf16_on_a_gpu_that_runs_it():
    expected = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    assert pick_precision("auto", torch.device("cuda")) == expected


def test_one_process_nccl_group(tmp_path):
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=4, val=2, corrupt=False)
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m", "torch.distributed.run"]
    proc = subprocess.run(launcher + ["--standalone", "--nproc_per_node=1", "-m", "autoenc_cli", "train", str(data),
                                      "--out", str(tmp_path / "run"), "--max-steps", "5", "--batch-size", "4", "--device", "cuda"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_windows_cut_on_the_gpu_match_the_host_and_a_photo_folder_trains_there(tmp_path):
    from test_photos import make_photos

    from autoenc_cli.data.pyramids import cached_photos

    from autoenc_cli.data.windows import draw_windows, window_batch
    data = make_photos(tmp_path / "photos", count=6)
    photos = cached_photos(sorted(data.glob("*.png")), tmp_path / "cache")
    draws = draw_windows(seed=1, epoch=0, pictures=len(photos), count=48)
    on_host = window_batch(photos, draws, 0, 48, turns=True, channel_orders=True).int()
    photos.to(torch.device("cuda"))
    on_gpu = window_batch(photos, draws.to("cuda"), 0, 48, turns=True, channel_orders=True)
    assert on_gpu.device.type == "cuda"
    difference = (on_gpu.cpu().int() - on_host).abs()
    assert difference.max() <= 1 and (difference > 0).float().mean() < 1e-3  # float order (TF32 off): one level, rarely
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=1000, max_steps=20, batch_size=8,
                               device="cuda", windows_per_photo=8, cache_dir=str(tmp_path / "cache")), say=quiet)
    assert result.step == 20 and np.isfinite(result.val_psnr)


def test_tiles_on_cuda_give_the_cpu_latents():
    from autoenc_cli.codec.encoding import encode_picture
    model, _ = load_model(__import__("autoenc_cli.model.weights", fromlist=["x"]).default_weights_path())
    pixels = photo_like(np.random.default_rng(1), 64).repeat(5, 0).repeat(7, 1)  # 320 x 448: several 16 MB windows
    on_cpu = encode_picture(model, pixels, max_memory_mb=16)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # cuDNN's default TF32 convolutions alone differ by up to 0.11 (H100, 2026-11-26)
    try:
        on_gpu = encode_picture(model.to("cuda"), pixels, max_memory_mb=16)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert np.abs(on_cpu - on_gpu).max() < 0.05  # float order in full float32
    assert encode_picture(model, pixels).shape == on_cpu.shape  # the default: half the free GPU memory
