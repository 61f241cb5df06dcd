"""Training on several machines, each caching only its share of the pictures: two torchrun agents with --nnodes=2
(c10d rendezvous on 127.0.0.1, gloo on the CPU) stand for two machines, each with its own --cache-dir and two
processes that build that machine's cache together."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist
from test_photos import make_photos

from autoenc_cli.data.pyramids import cached_photos
from autoenc_cli.data.splits import split_dataset
from autoenc_cli.training.checkpoint import read_log

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")]

TRAIN = ["--epochs", "1000", "--max-steps", "4", "--batch-size", "2", "--windows-per-photo", "2", "--warmup-steps", "1",
         "--precision", "fp32", "--device", "cpu", "--seed", "5"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cached(folder: Path) -> tuple[int, int]:
    """(bytes of the pixel arrays, pictures) in a cache folder."""
    infos = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    return sum(p.stat().st_size for p in folder.glob("*.npy")), sum(i["files"] - i["skipped"] for i in infos)


def test_two_machines_each_cache_about_half_and_train_together(tmp_path):
    data = make_photos(tmp_path / "data", count=16, seed=3)
    one = tmp_path / "one-machine"
    split = split_dataset(data)
    whole = [cached_photos(files, one) for files in (split.train, split.val)]
    one_bytes, one_pictures = cached(one)
    assert one_pictures == sum(map(len, whole)) == 16
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m", "torch.distributed.run"]
    launch = ["--nnodes=2", "--nproc_per_node=2", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}",
              "--rdzv-id=autoenc-machines"]
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    agents = [subprocess.Popen(launcher + launch + ["-m", "autoenc_cli", "train", str(data), "--out", str(tmp_path / "run"),
                                                    "--cache-dir", str(tmp_path / f"machine{m}"), *TRAIN],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for m in (0, 1)]
    results = [a.communicate(timeout=600) for a in agents]
    assert [a.returncode for a in agents] == [0, 0], "\n".join(err[-3000:] for _, err in results)
    assert sum(out.count("done: step 4") for out, _ in results) == 1  # rank 0 alone reports
    assert [int(r["step"]) for r in read_log(tmp_path / "run" / "log.csv") if r["train_loss"]][-1] == 4
    caches = [cached(tmp_path / f"machine{m}") for m in (0, 1)]
    # the 15 training pictures split 7 + 8, the validation picture decoded on rank 0's machine alone
    assert sorted(pictures for _, pictures in caches) == [8, 8]
    for size, _ in caches:
        assert 0.25 * one_bytes < size <= 0.6 * one_bytes, (size, one_bytes)
    assert all(len(list((tmp_path / f"machine{m}").glob("*.npy"))) >= 2 for m in (0, 1))
