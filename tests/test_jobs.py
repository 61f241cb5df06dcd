"""Collections as jobs (data/jobs.py): encode, --stack, score and eval of a folder survive a kill and continue where
they stopped, refuse to mix in another job, and under torchrun (gloo, 2 processes on this host) give one process's
output. The torchrun cases are slow; the others run in-process."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
from conftest import photo_like, torchrun_workers, write_image
from typer.testing import CliRunner

from autoenc_cli.cli.app import app
from autoenc_cli.codec.stack import encode_stack, job_batches, job_folder
from autoenc_cli.errors import AutoencError, Interrupted
from autoenc_cli.model.autoencoder import Autoencoder

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


def pictures(folder: Path, count: int, size: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(count):
        write_image(folder / f"p{i:03d}.png", photo_like(rng, size))
    return folder


def stop_after(pictures_done: int):
    """A progress callback that presses Ctrl-C once the job has `pictures_done` pictures saved."""
    def progress(done, total, step=""):
        if done >= pictures_done:
            raise KeyboardInterrupt
    return progress


@pytest.fixture(scope="module")
def model():
    return Autoencoder(1).eval()


def test_a_stack_interrupted_continues_where_it_stopped_and_ends_as_one_run(tmp_path, model):
    files = sorted(pictures(tmp_path / "data", 40).iterdir())
    whole = encode_stack(model, files, tmp_path / "whole.npy", None)
    target = tmp_path / "f.npy"
    with pytest.raises(Interrupted, match=r"interrupted: (\d+) of 40 pictures done, kept in .*run the same command again"):
        encode_stack(model, files, target, None, progress=stop_after(10))
    assert not target.exists() and job_folder(target).is_dir()  # no output until the job is complete
    said = []
    again = encode_stack(model, files, target, None, say=said.append)
    assert said and said[0].startswith("continuing: ") and " of 40 pictures done" in said[0]
    assert np.load(target).tobytes() == np.load(tmp_path / "whole.npy").tobytes() and again.paths == whole.paths
    assert not job_folder(target).exists()  # the job's folder goes with the output written


def test_an_unfinished_job_refuses_other_pictures_weights_or_options(tmp_path, model):
    files = sorted(pictures(tmp_path / "data", 20).iterdir())
    target = tmp_path / "f.npy"
    with pytest.raises(Interrupted):
        encode_stack(model, files, target, None, progress=stop_after(2))
    for change, match in (({"files": files[:-1]}, "over other pictures"), ({"dtype": "float16"}, "with other options: --dtype 'float32' \\(now 'float16'\\)"),
                          ({"weights": {"sha256": "other"}}, "with other weights")):
        args = {"files": files, "dtype": "float32", "weights": None} | change
        with pytest.raises(AutoencError, match=f"holds an unfinished job {match}.*rerun it as it began.*or delete"):
            encode_stack(model, args["files"], target, None, args["dtype"], args["weights"])
    write_image(files[0], photo_like(np.random.default_rng(9), 64))  # a picture changed since the job began
    os.utime(files[0], ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(AutoencError, match="over other pictures"):
        encode_stack(model, files, target, None)
    assert not target.exists()


def test_a_half_written_part_is_never_read_as_done(tmp_path, model):
    files = sorted(pictures(tmp_path / "data", 20).iterdir())
    target = tmp_path / "f.npy"
    with pytest.raises(Interrupted):
        encode_stack(model, files, target, None, progress=stop_after(2))
    folder = job_folder(target)
    (folder / ".00000003.part.npz.x1.tmp").write_bytes(b"half a part")  # as a killed write leaves it
    said = []
    encode_stack(model, files, target, None, say=said.append)
    assert np.load(target).shape[0] == 20 and not folder.exists()


def test_the_job_s_progress_counts_every_picture_and_the_refinement_s_steps(tmp_path, model):
    files = sorted(pictures(tmp_path / "data", 6).iterdir())
    seen = []
    encode_stack(model, files, tmp_path / "f.npy", None, refine=2, progress=lambda *call: seen.append(call))
    assert seen[0] == (0, 6, "") and seen[-1] == (6, 6, "")  # shown at once, before any work; ends complete
    assert {step for _, _, step in seen} >= {"step 1 of 2", "step 2 of 2"}  # the steps within the batch at hand
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)  # never goes back


def test_one_pass_batches_never_depend_on_the_processes_and_refined_ones_give_each_two():
    assert job_batches(1000, 1024, 0, 1) == job_batches(1000, 1024, 0, 8)
    assert len(job_batches(1000, 1024, 0, 1)) == 16 and sum(map(len, job_batches(1000, 1024, 0, 1))) == 1000
    assert len(job_batches(40, 1024, 10, 2)) == 4 and len(job_batches(40, 1024, 10, 1)) == 2
    assert max(map(len, job_batches(5000, 64, 10, 1))) == 64  # never more than a pass holds


def test_encode_folder_skips_a_broken_picture_names_it_and_exits_1(tmp_path):
    data = pictures(tmp_path / "data", 3)
    (data / "broken.png").write_bytes(b"not a picture")
    result = invoke("encode", data, "-o", tmp_path / "lat")
    assert result.exit_code == 1 and "skipped 1 of 4 pictures, unreadable" in result.output
    assert "broken.png: not an image Pillow can read" in result.output
    assert sorted(p.name for p in (tmp_path / "lat").iterdir()) == [f"p00{i}.npy{s}" for i in range(3) for s in ("", ".json")]


def test_encode_folder_interrupted_continues_without_redoing_or_refusing_its_own_outputs(tmp_path, monkeypatch):
    data = pictures(tmp_path / "data", 6)
    monkeypatch.chdir(tmp_path)
    import autoenc_cli.data.jobs as jobs
    real_save, saved = jobs.Job.save, []

    def save_then_stop(self, batch, record, arrays=None):
        real_save(self, batch, record, arrays)
        saved.append(batch)
        if len(saved) == 1:
            raise KeyboardInterrupt
    monkeypatch.setattr(jobs.Job, "save", save_then_stop)
    first = invoke("encode", data)  # no -o: ./NAME.npy, a default name never over a file the user did not name
    assert first.exit_code == 130 and "interrupted: 2 of 6 pictures done" in first.output  # batches of 2: 4 a process
    monkeypatch.setattr(jobs.Job, "save", real_save)
    again = invoke("encode", data)
    assert again.exit_code == 0, again.output
    assert "continuing: 2 of 6 pictures done" in again.output and again.output.count(" -> ") == 6
    assert len(list(tmp_path.glob("p*.npy"))) == 6 and not (tmp_path / ".autoenc-encode.job").exists()
    assert "exists; not replacing" in invoke("encode", data).output  # once done, the outputs are the user's


def test_eval_and_score_continue_after_an_interruption_with_the_same_figures(tmp_path, monkeypatch):
    data = pictures(tmp_path / "data", 12, size=48)
    whole = invoke("eval", data, "--whole", "--json")
    assert whole.exit_code == 0, whole.output
    import autoenc_cli.data.jobs as jobs
    real_save = jobs.Job.save

    def stop_on_the_second(self, batch, record, arrays=None):
        real_save(self, batch, record, arrays)
        if len(jobs.done_batches(self.folder, len(self.batches))) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(jobs.Job, "save", stop_on_the_second)
    for args in (["eval", data, "--whole", "--json"], ["score", data, "--json"]):
        assert invoke(*args).exit_code == 130
    monkeypatch.setattr(jobs.Job, "save", real_save)
    again = invoke("eval", data, "--whole", "--json")
    assert "continuing: " in again.stderr
    assert json.loads(again.stdout)["per_picture"] == json.loads(whole.stdout)["per_picture"]
    scored = invoke("score", data, "--json")
    assert scored.exit_code == 0 and "continuing: " in scored.stderr and json.loads(scored.stdout)["pictures"] == 12


# ---------------------------------------------------------------- real torchrun, two processes on this host

needs_gloo = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")


def torchrun(*args, nproc: int = 2, wait: bool = True, extra: tuple = ()):
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m", "torch.distributed.run"]
    cmd = launcher + ["--standalone", f"--nproc_per_node={nproc}", *extra, "-m", "autoenc_cli"] + [str(a) for a in args]
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def alone(*args):
    """The same command in one process (in this one: no torchrun)."""
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
@needs_gloo
def test_two_processes_give_one_process_s_stack_eval_and_score(tmp_path):
    data = pictures(tmp_path / "data", 20)
    pictures(data / "big", 3, size=96, seed=1)
    commands = {"eval": ("eval", data, "--json"), "whole": ("eval", data, "--whole", "--json"), "score": ("score", data, "--json")}
    stacked = torchrun("encode", data, "--resize", 64, "--stack", tmp_path / "two.npy")
    assert stacked.returncode == 0, stacked.stderr
    alone("encode", data, "--resize", 64, "--stack", tmp_path / "one.npy")
    assert (tmp_path / "one.npy").read_bytes() == (tmp_path / "two.npy").read_bytes()
    assert json.loads((tmp_path / "one.npy.json").read_text()) == json.loads((tmp_path / "two.npy.json").read_text())
    for mode, args in commands.items():
        two = torchrun(*args)
        assert two.returncode == 0 and two.stdout.count("\n") == 1, two.stderr  # printed once, by rank 0
        assert json.loads(two.stdout) == json.loads(alone(*args).stdout), mode


def kill_when_parts(agent: subprocess.Popen, folder: Path, rank: int, parts: int = 1) -> None:
    """SIGKILL the worker of `rank` once the job's folder holds `parts` finished batches."""
    deadline = time.monotonic() + 300
    while len(list(folder.glob("*.part.npz"))) < parts:
        assert agent.poll() is None and time.monotonic() < deadline, "the job ended before it could be killed"
        time.sleep(0.05)
    os.kill(torchrun_workers(agent)[rank], signal.SIGKILL)


@pytest.mark.slow
@needs_gloo
def test_a_worker_killed_mid_job_leaves_no_output_and_the_rerun_finishes_it(tmp_path):
    data = pictures(tmp_path / "data", 16)
    target = tmp_path / "f.npy"
    agent = torchrun("encode", data, "--stack", target, "--refine", 20, wait=False)
    kill_when_parts(agent, job_folder(target), rank=1)
    agent.communicate(timeout=300)
    assert agent.returncode != 0 and not target.exists()  # nothing left as if complete
    rerun = torchrun("encode", data, "--stack", target, "--refine", 20)
    assert rerun.returncode == 0, rerun.stderr
    assert "continuing: " in rerun.stderr and " of 16 pictures done" in rerun.stderr
    alone("encode", data, "--stack", tmp_path / "one.npy", "--refine", 20)  # refined in other batches: float rounding
    np.testing.assert_allclose(np.load(target), np.load(tmp_path / "one.npy"), rtol=1e-4, atol=1e-3)
    assert json.loads((tmp_path / "one.npy.json").read_text())["paths"] == json.loads((tmp_path / "f.npy.json").read_text())["paths"]


@pytest.mark.slow
@needs_gloo
def test_under_max_restarts_a_lost_worker_costs_only_its_batch(tmp_path):
    data = pictures(tmp_path / "data", 16)
    out = tmp_path / "lat"
    agent = torchrun("encode", data, "-o", out, "--refine", 20, wait=False, extra=("--max-restarts", "1"))
    kill_when_parts(agent, out / ".autoenc-encode.job", rank=0)
    _, err = agent.communicate(timeout=300)
    assert agent.returncode == 0, err
    assert "continuing: " in err and len(list(out.glob("*.npy"))) == 16 and not (out / ".autoenc-encode.job").exists()
