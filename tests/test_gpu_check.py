"""benchmarks/gpu_check.py's plumbing, in its dry mode on the CPU: every step runs and reports."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import photo_like, write_image

ROOT = Path(__file__).resolve().parent.parent


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
    assert set(report["steps"]) == {"tests", "bench", "sweep", "recipe", "sqrt"}
    assert report["steps"]["tests"]["status"] == "ok" and report["steps"]["sweep"]["status"] == "ok"
    assert all(report["steps"][run]["status"] in ("ok", "stopped to save") for run in ("recipe", "sqrt"))
    sweep = json.loads((out / "sweep.json").read_text())
    assert [r["batch"] for r in sweep["results"]] == [4, 8] and sweep["windows_per_s"] > 0 and sweep["compiled"]["images_per_s"] > 0
    assert report["train_plan"]["lrs"]["sqrt"] == pytest.approx(report["train_plan"]["lrs"]["recipe"] * 0.5)  # batch 8 of 32
    assert (out / "recipe.safetensors").is_file() and (out / "sqrt.csv").is_file() and report["versions"]["torch"]
    assert len(list(out.iterdir())) <= 8  # what the device tool brings back
