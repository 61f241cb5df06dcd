"""benchmarks/gpu_check.py's plumbing, in its dry mode on the CPU: every step runs and reports."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import photo_like, write_image

ROOT = Path(__file__).resolve().parent.parent
GUARD_ERROR = (r"error: (training diverged at step|the run ended at val PSNR .* below its best|training failed: after "
               r".* no better than a flat colour)")  # training/train.py's three endings of a run that went wrong


@pytest.mark.slow
def test_the_gpu_check_runs_every_step_and_reports(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        write_image(tmp_path / "photos" / f"p{i}.png", np.tile(photo_like(rng, 64), (2, 2, 1)))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path / "photos"), "--out", str(out),
                           "--dry-run"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    runs = ("scratch", "linear", "scratch_4x")
    assert set(report["steps"]) == {"tests", "bench", "sweep", *runs}
    assert report["steps"]["tests"]["status"] == "ok" and report["steps"]["sweep"]["status"] == "ok"
    # from scratch with the defaults: done, or stopped to save when the budget ran out on a loaded machine, or (on so
    # few steps) ended by the guard's own one-line error; never a crash, whose exit status is 1 too
    for run in runs:
        step = report["steps"][run]
        tail = " ".join(step["tail"].split())
        assert "Traceback" not in step["tail"], (run, step["tail"])
        assert step["status"] in ("ok", "stopped to save") or (step["status"] == "failed (exit 1)" and re.search(
            GUARD_ERROR, tail)), (run, step)
    assert all("step,epoch" in report["steps"][run]["log_csv"] for run in runs)
    sweep = json.loads((out / "sweep.json").read_text())
    assert [r["batch"] for r in sweep["results"]] == [4, 8] and sweep["windows_per_s"] > 0 and sweep["compiled"]["images_per_s"] > 0
    assert report["train_plan"] == {"batch": 4, "steps": 12}
    assert (out / "linear.safetensors").is_file() and report["versions"]["torch"]
    assert len(list(out.iterdir())) <= 8  # what the device tool brings back
