"""Runs survive lost workers under torchrun: with --max-restarts and --auto-resume, SIGKILL of any worker (rank 0
too, at random moments: during the first data load, between and during saves) ends with the run finished from its
last save, every file whole, and the same losses as a run that was never interrupted; a process group that fails
ends each process with one line naming its rank and the cause."""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
from conftest import photo_like, torchrun_workers, write_image
from test_kill import assert_intact, saved_step

from autoenc_cli.training.checkpoint import read_log

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo"),
              pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds workers through /proc")]

STEPS = 40
TRAIN = ["--epochs", "1000", "--max-steps", str(STEPS), "--batch-size", "4", "--warmup-steps", "5", "--seed", "3",
         "--precision", "fp32", "--device", "cpu", "--save-every", "2", "--auto-resume"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("restarts") / "data"
    rng = np.random.default_rng(0)
    for i in range(40):
        write_image(folder / f"img{i:02d}.png", photo_like(rng), format="PNG")
    return folder


def torchrun_command(*launch: str) -> list[str]:
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m", "torch.distributed.run"]
    return launcher + list(launch)


def start(launch: list[str], data: Path, run: Path, *extra: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    cmd = torchrun_command(*launch) + ["-m", "autoenc_cli", "train", str(data), "--out", str(run), "--cache-dir",
                                       str(run.parent / "cache"), *TRAIN, *extra]
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


def kill_a_worker(agents: list[subprocess.Popen], rank: int) -> bool:
    for agent in agents:
        pid = torchrun_workers(agent).get(rank)
        if pid:
            os.kill(pid, signal.SIGKILL)
            return True
    return False


# Waits are on conditions (a save on disk, a process in /proc, a line in a log), never on a fixed sleep: a busy or
# slow machine makes a test slower, not wrong. WAIT_S is the deadline past which the test fails naming what it waited
# for: far beyond what a loaded 2-core machine needs (a run's first saves: seconds to a minute or two).
WAIT_S = 600


def wait_until(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.02)


def wait_for_save(run: Path, step: int, agents: list[subprocess.Popen]) -> None:
    """Until the run has saved `step` (or later), its agents still running: the moment a test kills at."""
    wait_until(lambda: saved_step(run) >= step or any(a.poll() is not None for a in agents), f"the save of step {step}")
    assert all(a.poll() is None for a in agents), f"the run ended before its save of step {step} was seen"


def kill_when_found(agents: list[subprocess.Popen], rank: int) -> None:
    """SIGKILL the worker of `rank`, once /proc shows it (a look at /proc can miss a process that is starting)."""
    wait_until(lambda: kill_a_worker(agents, rank) or any(a.poll() is not None for a in agents), f"rank {rank}'s process")
    assert all(a.poll() is None for a in agents), f"the run ended before rank {rank} could be killed"


def train_losses(run: Path) -> list[float]:
    return [float(r["train_loss"]) for r in read_log(run / "log.csv") if r["train_loss"]]


def check_finished_like(run: Path, reference: Path) -> None:
    assert_intact(run)
    assert saved_step(run) == STEPS
    rows = read_log(run / "log.csv")
    steps = [int(r["step"]) for r in rows]
    assert steps == [int(r["step"]) for r in read_log(reference / "log.csv")], "duplicated or missing log steps"
    np.testing.assert_allclose(train_losses(run), train_losses(reference), rtol=1e-5)  # nothing lost, nothing done twice
    assert not list(run.glob(".*.tmp"))


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("whole") / "run"
    proc = start(["--standalone", "--nproc_per_node=2"], data, run)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return run


def test_sigkill_of_random_workers_under_max_restarts_finishes_the_run(data, uninterrupted, tmp_path):
    seed = int(os.environ.get("AUTOENC_KILL_SEED", "20261126"))  # fixed, so a failure can be replayed
    rng = random.Random(seed)
    run = tmp_path / "run"
    agent = start(["--standalone", "--nproc_per_node=2", "--max-restarts=3"], data, run)
    kills = []
    for attempt in range(3):
        before = saved_step(run)
        if attempt == 0:
            # Real time is the point here: a random moment of the start (the workers are importing torch, loading
            # data or training the first steps, whichever a machine's speed makes it). Any moment must end well.
            time.sleep(rng.uniform(3.0, 6.0))
        else:
            wait_until(lambda: saved_step(run) > before or agent.poll() is not None, f"a save after step {before}")
            time.sleep(rng.uniform(0.0, 0.5))  # a random moment after a save: during the next one, now and then
        rank = rng.choice([0, 1]) if attempt else 0
        if agent.poll() is None and kill_a_worker([agent], rank):
            kills.append((rank, before))
    out, err = agent.communicate(timeout=600)
    assert agent.returncode == 0, f"kills {kills} (seed {seed}):\n{err[-3000:]}"
    assert "done: step 40" in out and len(kills) == 3, (kills, seed)
    assert err.count("continuing the run in") >= 2, err[-3000:]
    check_finished_like(run, uninterrupted)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_machines() -> list[str]:
    return ["--nnodes=2", "--nproc_per_node=1", "--max-restarts=2", "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{free_port()}", "--rdzv-id=autoenc-test"]


@pytest.fixture(scope="module")
def uninterrupted_on_two_machines(data, tmp_path_factory) -> Path:
    """Each machine trains on the windows of its own share of the pictures: its own order, not one machine's."""
    run = tmp_path_factory.mktemp("whole2") / "run"
    launch = two_machines()
    agents = [start(launch, data, run), start(launch, data, run)]
    results = [a.communicate(timeout=600) for a in agents]
    assert [a.returncode for a in agents] == [0, 0], "\n".join(err[-2000:] for _, err in results)
    return run


def test_two_machines_on_one_host_survive_losing_a_worker(data, uninterrupted_on_two_machines, tmp_path):
    """Two torchrun agents (--nnodes=2, c10d rendezvous on 127.0.0.1) stand for two machines; after the kill,
    the agent that lost its worker restarts it and the other agent's restart count does not move (torchrun's
    rendezvous round is what tells them apart)."""
    run = tmp_path / "run"
    launch = two_machines()
    agents = [start(launch, data, run), start(launch, data, run)]
    wait_for_save(run, 6, agents)
    kill_when_found(agents, 1)
    results = [a.communicate(timeout=WAIT_S) for a in agents]
    assert [a.returncode for a in agents] == [0, 0], "\n".join(err[-2000:] for _, err in results)
    check_finished_like(run, uninterrupted_on_two_machines)


def test_a_lost_worker_without_restarts_ends_each_process_with_one_line(data, tmp_path):
    run = tmp_path / "run"
    agent = start(["--standalone", "--nproc_per_node=2", "--max-restarts=0"], data, run)
    wait_for_save(run, 4, [agent])  # training, not starting up: the others are in the step's collectives
    kill_when_found([agent], 1)
    _, err = agent.communicate(timeout=WAIT_S)
    assert agent.returncode != 0
    assert "error: rank 0: lost the other processes" in err, err[-3000:]
    assert "╭" not in err and "[rank0]: Traceback" not in err  # no traceback of ours; torchrun's summary follows


def test_a_hung_worker_fails_the_others_after_the_dist_timeout(data, tmp_path):
    run, log = tmp_path / "run", tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        agent = start(["--standalone", "--nproc_per_node=2", "--max-restarts=0"], data, run, "--dist-timeout", "5", stderr=stderr)
    wait_for_save(run, 4, [agent])
    wait_until(lambda: 1 in torchrun_workers(agent) or agent.poll() is not None, "rank 1's process")
    hung = torchrun_workers(agent)[1]
    os.kill(hung, signal.SIGSTOP)  # alive, its sockets open, answering nothing
    stopped = time.monotonic()
    try:  # real time is what this test measures: how long rank 0 waits before it gives up
        wait_until(lambda: agent.poll() is not None or "error: rank 0" in log.read_text(), "rank 0's error", timeout=300)
        waited = time.monotonic() - stopped
    finally:
        if Path(f"/proc/{hung}").exists():
            os.kill(hung, signal.SIGCONT)
    agent.communicate(timeout=WAIT_S)
    err = log.read_text()
    assert "error: rank 0: no answer from the other processes within --dist-timeout 5 s" in err, err[-3000:]
    assert 5 <= waited < 120, waited  # never before the timeout; and far from the default of 600 s, even under load
    # rank 0, which waited, ends with its one line and no traceback. (Rank 1, frozen and then continued into a group
    # already gone, printed a traceback once in CI, not in 6 runs here: not asserted, said in the note.)
    assert not [line for line in err.splitlines() if line.startswith("[rank0]:") and "Traceback" in line]
