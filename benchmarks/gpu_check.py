"""The prepared GPU check: one device call, every step with its own time budget, results under --out.

On the GPU machine (torch, typer, rich, pillow, numpy, safetensors are there; nothing is installed):

    PYTHONPATH=. python3 benchmarks/gpu_check.py DATA --out "$OUT" --minutes 9

Here, in CI, on the CPU, the same plumbing with tiny budgets (tests/test_gpu_check.py runs it):

    python benchmarks/gpu_check.py DATA --out /tmp/check --dry-run

DATA: a folder of photos (the corpus of benchmarks/corpus.py, carried as an ignored path) or any dataset
`autoenc train` reads. Steps, in order, each a subprocess killed at its budget, so one failure or hang
still leaves the others' results:
  1. versions: GPU, torch, CUDA (report.json);
  2. the device tests: `pytest -m gpu tests/test_gpu.py` (training and --resume on CUDA, encode/decode
     against the CPU, bf16 picked by --precision auto, a one-process NCCL group);
  3. `autoenc bench DATA --device cuda --json OUT/bench.json`;
  4. training images/s over batch sizes with the dataset on the device (OUT/sweep.json);
  5. training the default weights with the time left: `autoenc train DATA --init default`, stopped
     by SIGTERM before the budget ends (the state and weights are saved), copied to OUT/model.safetensors.
OUT/report.json says for each step: ok / failed / timed out, its seconds, and the tail of its output.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWEEP_BATCHES = (32, 64, 128, 256, 512, 1024, 2048)
BUDGETS_S = {"tests": 150, "bench": 120, "sweep": 90}  # the rest of --minutes trains
DRY = {"tests": 60, "bench": 90, "sweep": 30, "train": 30}  # CPU plumbing check
TRAIN_BATCH = 256  # on the GPU: batch 32 leaves an H100 mostly idle (the sweep shows how much)
DATA_PATH_IMAGES_PER_S = 8000  # an estimate of photo windows cut per second by one CPU process (not yet measured there)


def run_step(name: str, cmd: list[str], budget: float, out: Path, report: dict, term_at: float | None = None) -> None:
    """Run cmd for at most `budget` seconds (SIGTERM at term_at seconds, then SIGKILL at the budget)."""
    started = time.monotonic()
    log = out / f"{name}.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True)
        status = "ok"
        try:
            proc.wait(timeout=term_at if term_at is not None else budget)
        except subprocess.TimeoutExpired:
            status = "timed out"
            if term_at is not None:  # ask it to save and stop, and give it the rest of the budget
                proc.send_signal(signal.SIGTERM)
                status = "stopped to save"
                try:
                    proc.wait(timeout=max(5.0, budget - term_at))
                except subprocess.TimeoutExpired:
                    status = "timed out"
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if status == "ok" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode})"
    tail = log.read_text(errors="replace")[-1500:]
    report["steps"][name] = {"status": status, "seconds": round(time.monotonic() - started, 1), "tail": tail}
    write_report(out, report)
    print(f"{name}: {status} in {report['steps'][name]['seconds']} s", flush=True)


def write_report(out: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=1))


def versions(device: str) -> dict:
    import torch
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device, "python": sys.version.split()[0]}
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "gpu_memory_gb": round(props.total_memory / 2**30, 1),
                 "bf16": torch.cuda.is_bf16_supported(including_emulation=False)}
    return info


def sweep(device_name: str, batches: list[int], out: Path, steps: int = 20) -> None:
    """Training images/s at each batch size, the data already on the device (random pixels: speed only)."""
    import torch
    sys.path.insert(0, str(ROOT))
    from autoenc_cli.hardware import autocast, pick_device, pick_precision
    from autoenc_cli.model import Autoencoder, encode_pixels, init_weights
    from autoenc_cli.optim import adam
    device = pick_device(device_name)
    precision = pick_precision("auto", device)
    results = []
    for batch in batches:
        model = Autoencoder().to(device, memory_format=torch.channels_last)
        init_weights(model)
        optimizer = adam(model.parameters(), device, lr=1e-3, betas=(0.9, 0.99))
        data = torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8, device=device)
        x = encode_pixels(data).contiguous(memory_format=torch.channels_last)
        for i in range(steps + 3):  # 3 warm-up steps
            if i == 3:
                sync(device)
                t = time.perf_counter()
            with autocast(device, precision):
                loss = torch.nn.functional.mse_loss(model(x).float(), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)
        results.append({"batch": batch, "images_per_s": round(batch * steps / (time.perf_counter() - t), 1)})
        (out / "sweep.json").write_text(json.dumps({"device": str(device), "precision": precision, "results": results}))
        print(results[-1], flush=True)


def training_steps(sweep_json: Path, seconds: float) -> int:
    """Steps that fit in `seconds` at TRAIN_BATCH, so that the cosine schedule ends on time: the sweep's rate,
    capped at what the CPU cuts windows at (DATA_PATH_IMAGES_PER_S), with a margin for validation and saves."""
    try:
        rates = {r["batch"]: r["images_per_s"] for r in json.loads(sweep_json.read_text())["results"]}
        rate = rates.get(TRAIN_BATCH, max(rates.values()))
    except (OSError, ValueError, KeyError):
        rate = 2000.0
    return max(100, int(0.6 * min(rate, DATA_PATH_IMAGES_PER_S) * max(0.0, seconds) / TRAIN_BATCH))


def sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=9.0, help="the whole check's budget")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny budgets: check the plumbing")
    ap.add_argument("--sweep-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.dry_run else "cuda"
    if args.sweep_only:
        return sweep(device, [4, 8] if args.dry_run else list(SWEEP_BATCHES), args.out, 2 if args.dry_run else 20)
    start = time.monotonic()
    report = {"versions": versions(device), "dry_run": args.dry_run, "steps": {}}
    write_report(args.out, report)
    budgets = DRY if args.dry_run else BUDGETS_S
    py = sys.executable
    tests = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "tests/test_gpu.py"]
    run_step("tests", tests + (["--collect-only"] if args.dry_run else []), budgets["tests"], args.out, report)
    bench = [py, "-m", "autoenc_cli", "bench", str(args.data), "--device", device, "--json", str(args.out / "bench.json")]
    run_step("bench", bench + (["--naive-steps", "1"] if args.dry_run else []), budgets["bench"], args.out, report)
    sweep_cmd = [py, str(Path(__file__).resolve()), str(args.data), "--out", str(args.out), "--sweep-only"]
    run_step("sweep", sweep_cmd + (["--dry-run"] if args.dry_run else []), budgets["sweep"], args.out, report)
    left = DRY["train"] if args.dry_run else args.minutes * 60 - (time.monotonic() - start) - 10
    run_dir = args.out / "run"
    steps = 20 if args.dry_run else training_steps(args.out / "sweep.json", left - 60)
    train = [py, "-m", "autoenc_cli", "train", str(args.data), "--out", str(run_dir), "--device", device, "--init", "default",
             "--epochs", "100000", "--max-steps", str(steps), "--batch-size", str(TRAIN_BATCH), "--save-minutes", "1"]
    report["train_steps"] = steps
    run_step("train", train, left, args.out, report, term_at=max(1.0, left - 25))
    if (run_dir / "model.safetensors").is_file():
        shutil.copy(run_dir / "model.safetensors", args.out / "model.safetensors")
    print(f"report: {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
