"""The prepared GPU check: one device call, every step with its own time budget, results under --out.

On the GPU machine (torch, rich, pillow, numpy, safetensors are there; its typer is not the pinned 0.29, so carry
typer==0.29.2, shellingham, annotated-doc, pydantic, pydantic_core, annotated-types, typing-inspection and
typing_extensions as wheels in .whl/, as the device tool's README says, and install them into /tmp/site first):

    PYTHONPATH=/tmp/site:. python3 benchmarks/gpu_check.py corpus/train --out "$OUT" --minutes 9.3

Here, in CI, on the CPU, the same plumbing with tiny budgets (tests/test_gpu_check.py runs it):

    python benchmarks/gpu_check.py DATA --out /tmp/check --dry-run

DATA: a folder of photos (the corpus of benchmarks/corpus.py, carried as an ignored path) or any dataset
`autoenc train` reads. Steps, in order, each a subprocess killed at its budget, so one failure or hang
still leaves the others' results:
  1. versions: GPU, torch, CUDA;
  2. the device tests: `pytest -m gpu tests/test_gpu.py` (training and --resume on CUDA, encode/decode
     against the CPU, windows cut on the GPU against the host, bf16 picked by --precision auto, NCCL);
  3. `autoenc bench DATA --device cuda --json bench.json`;
  4. the sweep: training images/s over batch sizes with the data on the device, the same step compiled
     (torch.compile) at one batch, windows cut per second on the device, and MFU against the bf16 matmul rate;
  5. training FROM SCRATCH with the time left, the runs of RUNS one after the other (each alone on the GPU, so
     its speed is the sweep's), every one with `autoenc train`'s own defaults but for what RUNS names (issue 31:
     the default recipe at the default GPU batch 512 must train without the guard stepping in; at 4x the batch
     too; issue 29: the same with --latent linear, at an equal budget of images); each stopped by SIGTERM before
     its share of the time ends (the state saved) if its schedule has not ended by then.
Logs and runs go to --work; --out gets at most 8 files (what the device tool brings back): report.json
(each step: ok / failed / timed out, its seconds, the tail of its output; each run's log.csv, its guard events
and last validation), sweep.json, bench.json, logs.txt, and each training run's weights as NAME.safetensors.
Score those on the held-out photos here afterwards (`autoenc eval /work/crops -w NAME.safetensors`, docs/training.md).
"""

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autoenc_cli.data.listing import find_images  # noqa: E402
SWEEP_BATCHES = (32, 64, 128, 256, 512, 1024, 2048)
BUDGETS_S = {"tests": 90, "bench": 90, "sweep": 90}  # the rest of --minutes trains
DRY = {"tests": 120, "bench": 180, "sweep": 240, "train": 120}  # CPU plumbing check: budgets, not timings (a loaded 2-core
# machine took over 60 s for the sweep, torch.compile included, in a CI run beside a training run)
# The from-scratch runs: the options each adds to `autoenc train DATA --device cuda` (batch: x the planned batch; the
# steps shrink with it, so every run sees the same number of windows).
RUNS = {"scratch": {"args": [], "batch": 1}, "linear": {"args": ["--latent", "linear"], "batch": 1},
        "scratch_4x": {"args": [], "batch": 4}}
EPOCHS_PER_RUN = 8  # validation, samples and the curve this many times per run
LOG_BYTES = 400_000  # of each step's log, into logs.txt


def run_step(name: str, cmd: list[str], budget: float, work: Path, report: dict, term_at: float | None = None) -> None:
    """Run cmd for at most `budget` seconds (SIGTERM at term_at seconds, then SIGKILL at the budget)."""
    started = time.monotonic()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), COLUMNS="200",
               PYTHONUNBUFFERED="1")
    with open(work / f"{name}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True)
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
    tail = (work / f"{name}.log").read_text(errors="replace")[-1500:]
    report["steps"][name] = {"status": status, "seconds": round(time.monotonic() - started, 1), "tail": tail}
    write_report(work, report)
    print(f"{name}: {status} in {report['steps'][name]['seconds']} s", flush=True)


def write_report(work: Path, report: dict) -> None:
    (work / "report.json").write_text(json.dumps(report, indent=1))


def versions(device: str) -> dict:
    import torch
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device, "python": sys.version.split()[0]}
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "gpu_memory_gb": round(props.total_memory / 2**30, 1),
                 "bf16": torch.cuda.is_bf16_supported(including_emulation=False)}
    return info


def training_rate(model, optimizer, x, steps: int, device, precision: str, step_fn=None) -> float:
    """Images/s of forward, backward and Adam on the batch x (3 warm-up steps, then `steps` timed)."""
    import torch
    from autoenc_cli.model.hardware import autocast

    def step():
        with autocast(device, precision):
            loss = torch.nn.functional.mse_loss((model if step_fn is None else step_fn)(x).float(), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    for _ in range(3):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return len(x) * steps / (time.perf_counter() - t)


def forward_flops(model, device) -> float:
    """Multiply-adds x 2 of the convolutions for one 64x64 picture (the rest is memory traffic)."""
    import torch
    flops = []
    hooks = [m.register_forward_hook(lambda m, i, o: flops.append(2 * o.numel() * m.in_channels // m.groups * math.prod(m.kernel_size)))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64, device=device))
    for h in hooks:
        h.remove()
    return float(sum(flops))


def sweep(device_name: str, data: Path, batches: list[int], work: Path, steps: int = 20) -> None:
    """Training images/s at each batch size with the data on the device (random pixels: speed only), then
    the same step under torch.compile, the windows cut per second there, and MFU; written as it goes."""
    import torch
    from autoenc_cli.measures.bench import matmul_gflops
    from autoenc_cli.model.hardware import pick_device, pick_precision
    from autoenc_cli.model.autoencoder import Autoencoder, encode_pixels, init_weights
    from autoenc_cli.training.optim import adam
    device = pick_device(device_name)
    precision = pick_precision("auto", device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    report = {"device": str(device), "precision": precision, "results": []}
    save = lambda: (work / "sweep.json").write_text(json.dumps(report, indent=1))  # noqa: E731
    flops = 3 * forward_flops(Autoencoder().to(device), device)  # forward + backward
    report["train_gflop_per_image"] = round(flops / 1e9, 4)
    report["bf16_gflops"] = round(matmul_gflops(device, torch.bfloat16 if precision == "bf16" else torch.float32), 1)

    def setup(batch):
        model = Autoencoder().to(device, memory_format=torch.channels_last)
        init_weights(model)
        x = encode_pixels(torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8, device=device))
        return model, adam(model.parameters(), device, lr=1e-3, betas=(0.9, 0.99)), x.contiguous(memory_format=torch.channels_last)
    for batch in batches:
        model, optimizer, x = setup(batch)
        rate = training_rate(model, optimizer, x, steps, device, precision)
        report["results"].append({"batch": batch, "images_per_s": round(rate, 1),
                                  "mfu": round(rate * flops / (report["bf16_gflops"] * 1e9), 4)})
        save()
        print(report["results"][-1], flush=True)
    report["windows_per_s"] = windows_rate(data, device, batches[len(batches) // 2])
    save()
    chosen = chosen_batch(report["results"])
    model, optimizer, x = setup(chosen)
    started = time.perf_counter()
    compiled = torch.compile(model)
    rate = training_rate(model, optimizer, x, steps, device, precision, step_fn=compiled)
    report["compiled"] = {"batch": chosen, "images_per_s": round(rate, 1), "compile_s": round(time.perf_counter() - started, 1)}
    save()
    print(report["compiled"], flush=True)


def windows_rate(data: Path, device, batch: int) -> float:
    """Photo windows cut per second where training cuts them (photos.Photos.to the device)."""
    from autoenc_cli.data.pyramids import cached_photos
    from autoenc_cli.data.windows import draw_windows, window_batch
    photos = cached_photos(find_images(data))
    if device.type != "cpu":
        photos.to(device)
    draws = draw_windows(0, 0, len(photos), 20 * batch).to(photos.table.device)
    window_batch(photos, draws, 0, batch)
    sync(device)
    t = time.perf_counter()
    for i in range(1, 20):
        window_batch(photos, draws, i * batch, batch)
    sync(device)
    return round(19 * batch / (time.perf_counter() - t), 1)


def chosen_batch(results: list[dict]) -> int:
    """The smallest batch within 15% of the fastest: more steps for the same images, at nearly the best speed."""
    best = max(r["images_per_s"] for r in results)
    return min(r["batch"] for r in results if r["images_per_s"] >= 0.85 * best)


def training_plan(work: Path, seconds: float, dry: bool) -> dict:
    """Batch and steps for a run of `seconds` at `autoenc train`'s default GPU batch, so that its cosine schedule
    ends in time (75% of the sweep's speed at that batch)."""
    from autoenc_cli.training.config import CUDA_BATCH
    batch = CUDA_BATCH
    try:
        sweep_report = json.loads((work / "sweep.json").read_text())
        rate = next(r["images_per_s"] for r in sweep_report["results"] if r["batch"] == batch)
        rate = 1 / (1 / rate + 1 / sweep_report.get("windows_per_s", math.inf))  # model and windows share the GPU
    except (OSError, ValueError, KeyError, StopIteration):
        rate = 20000.0
    if dry:
        batch, rate = 4, 50.0
    steps = 12 if dry else max(20, int(0.75 * rate * max(0.0, seconds - 40) / batch))  # 40 s to start and validate
    return {"batch": batch, "steps": steps}


def run_summary(run: Path) -> dict:
    """What a run's log.csv says: its guard events, last validation, and the log itself (for the report)."""
    try:
        text = (run / "log.csv").read_text(errors="replace")
    except OSError:
        return {}
    import csv
    rows = list(csv.DictReader(text.splitlines()))
    scored = [r for r in rows if r.get("val_psnr")]
    return {"events": [r["event"] for r in rows if r.get("event")], "last_val_psnr": scored[-1]["val_psnr"] if scored else None,
            "last_step": rows[-1]["step"] if rows else None, "log_csv": text[-LOG_BYTES // 4:]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="at most 8 result files land here")
    ap.add_argument("--work", type=Path, default=None, help="logs and runs (default: a new temporary folder)")
    ap.add_argument("--minutes", type=float, default=9.0, help="the whole check's budget")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny budgets: check the plumbing")
    ap.add_argument("--sweep-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.dry_run else "cuda"
    if args.sweep_only:
        return sweep(device, args.data, [4, 8] if args.dry_run else list(SWEEP_BATCHES), work, 2 if args.dry_run else 20)
    start = time.monotonic()
    report = {"versions": versions(device), "dry_run": args.dry_run, "steps": {}}
    write_report(work, report)
    budgets = DRY if args.dry_run else BUDGETS_S
    py = sys.executable
    tests = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "tests/test_gpu.py"]
    run_step("tests", tests + (["--collect-only"] if args.dry_run else []), budgets["tests"], work, report)
    bench = [py, "-m", "autoenc_cli", "bench", str(args.data), "--device", device, "--json", str(work / "bench.json")]
    dry_bench = ["--naive-steps", "1", "--steps", "100"]  # plumbing only: two log windows, the first left out
    run_step("bench", bench + (dry_bench if args.dry_run else []), budgets["bench"], work, report)
    sweep_cmd = [py, str(Path(__file__).resolve()), str(args.data), "--out", str(args.out), "--work", str(work), "--sweep-only"]
    run_step("sweep", sweep_cmd + (["--dry-run"] if args.dry_run else []), budgets["sweep"], work, report)
    deadline = time.monotonic() + DRY["train"] if args.dry_run else start + args.minutes * 60 - 15
    plan = training_plan(work, (deadline - time.monotonic()) / len(RUNS), args.dry_run)
    report["train_plan"] = plan
    photos = len(find_images(args.data))
    per_photo = max(1, plan["steps"] * plan["batch"] // (EPOCHS_PER_RUN * max(1, photos)))
    runs = {name: [py, "-m", "autoenc_cli", "train", str(args.data), "--out", str(work / name), "--device", device,
                   "--epochs", "100000", "--max-steps", str(max(1, plan["steps"] // run["batch"])),
                   "--batch-size", str(plan["batch"] * run["batch"]), "--windows-per-photo", str(per_photo),
                   "--save-minutes", "1", *run["args"]]
            for name, run in RUNS.items()}
    for i, (name, cmd) in enumerate(runs.items()):  # one after the other, each alone on the GPU
        each = (deadline - time.monotonic()) / (len(runs) - i)
        run_step(name, cmd, each, work, report, term_at=max(1.0, each - 20))
        report["steps"][name] |= run_summary(work / name)
        write_report(work, report)
    collect(work, args.out, list(runs))
    print(f"report: {args.out / 'report.json'}")


def collect(work: Path, out: Path, runs: list[str]) -> None:
    """At most 8 files into out: the reports, every log (cut to LOG_BYTES each) in one file, each run's weights and log."""
    for name in ("report.json", "sweep.json", "bench.json"):
        if (work / name).is_file():
            shutil.copy(work / name, out / name)
    with open(out / "logs.txt", "w") as logs:
        for log in sorted(work.glob("*.log")):
            logs.write(f"===== {log.name}\n{log.read_text(errors='replace')[-LOG_BYTES:]}\n")
    for name in runs:  # their logs are in report.json
        if (work / name / "model.safetensors").is_file():
            shutil.copy(work / name / "model.safetensors", out / f"{name}.safetensors")


def sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
