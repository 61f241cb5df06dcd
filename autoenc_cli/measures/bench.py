"""`autoenc bench`: how fast the machine it runs on trains and runs the network, against its own ceiling.

Everything is measured in one run on the same data, so the ratios hold on a shared, noisy
machine. The ceiling: one training image costs 3 x 168.8 M multiply-adds x 2 = 1.01 GFLOP,
so images/s <= matmul GFLOP/s / 1.01 for the best precision the hardware runs natively.
"""

import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from autoenc_cli.training.checkpoint import read_log
from autoenc_cli.codec.encoding import decode_latents, encode_images
from autoenc_cli.data.reading import decode_or_none, load_square
from autoenc_cli.data.splits import split_dataset
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.measures import TIMED_STEPS
from autoenc_cli.model.hardware import cpu_flags, cpu_has_native_bf16, cpuinfo, keep_freed_memory, pick_device, pick_precision
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.training.config import DEFAULT_BATCH, TrainConfig

GFLOP_PER_TRAIN_IMAGE = 3 * 168.8e6 * 2 / 1e9
FLAGS_THAT_MATTER = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16"]


def machine() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}
    info["cpu"] = cpuinfo("model name") or info["cpu"]
    flags = cpu_flags()
    info["cpu_flags"] = [f for f in FLAGS_THAT_MATTER if f in flags]
    info["cpu_native_bf16"] = cpu_has_native_bf16(flags)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, dtype: torch.dtype, seconds: float = 1.5) -> float:
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(2):
        a @ b
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sync(device)
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        sync(device)
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def naive_reference(files: list[Path], steps: int, batch: int = 64) -> float:
    """A straightforward port: float32 NCHW, default init, Pillow decoding every sample, Python flips."""
    torch.manual_seed(0)
    rng = random.Random(0)
    model = Autoencoder(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    files = list(files)

    def one_image():
        while files:
            path = rng.choice(files)
            try:
                return load_square(path)
            except AutoencError:  # unreadable: skipped, as training skips it
                files.remove(path)
        raise AutoencError("no readable image for the naive reference")

    def step():
        imgs = []
        for _ in range(batch):
            a = one_image()
            imgs.append(a[:, ::-1] if rng.random() < 0.5 else a)
        x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 64 - 2
        loss = F.mse_loss(model(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t)


def readable_squares(files: list[Path]) -> list[np.ndarray]:
    """The files' 64x64 pixels; unreadable files are skipped, as training skips them."""
    squares = [a for a in map(decode_or_none, files) if a is not None]
    if not squares:
        raise AutoencError(f"none of {counted(len(files), 'sample image')} could be read")
    return squares


# Runs the CLI and writes the process's own peak resident memory (VmHWM, Linux) to a file at exit.
# (ru_maxrss of a child is no good here: Linux carries the parent's size across fork + exec.)
PEAK_WRAPPER = """
import atexit, sys
out = sys.argv.pop(1)
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            open(out, "w").write(line.split()[1])
atexit.register(peak)
from autoenc_cli.cli.app import app
app(prog_name="autoenc")
"""


def peak_mb(path: Path) -> float:
    try:
        return int(path.read_text()) / 1024
    except (OSError, ValueError):
        return float("nan")


def train_process(data: str, length: list[str], cache_dir: str | None, extra: list[str]) -> dict:
    """Run a whole `autoenc train` process (length: its --max-steps or --epochs; extra names its --batch-size);
    images/s over its wall time, peak memory, and the loop's steady rate: the median of the logged windows after
    the first (which holds the start: kernels picked, caches warmed)."""
    with tempfile.TemporaryDirectory() as out:
        peak_file = Path(out) / "peak"
        cmd = [sys.executable, "-c", PEAK_WRAPPER, str(peak_file), "train", data, "--out", f"{out}/run", *length, *extra]
        if cache_dir:
            cmd += ["--cache-dir", cache_dir]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"autoenc train failed:\n{proc.stderr[-2000:]}")
        rows = read_log(Path(out) / "run" / "log.csv")
        peak = peak_mb(peak_file)
    steps = int(rows[-1]["step"])
    batch = int(extra[extra.index("--batch-size") + 1])
    loop = [float(r["images_per_s"]) for r in rows if r.get("images_per_s")][1:]
    return {"wall_s": wall, "images": steps * batch, "images_per_s": steps * batch / wall,
            "loop_images_per_s": float(np.median(loop)) if loop else float("nan"),
            "peak_rss_mb": peak}


def convolutions_alone(device: torch.device, precision: str, batch: int = DEFAULT_BATCH, seconds: float = 3.0) -> float:
    """Images/s of the network's 17 convolutions alone, forward and backward, with the library's kernels.

    Nothing else of a training step (activations, depth-to-space, loss, optimizer) is counted, so
    this bounds what any training loop built on these kernels can reach on that machine.
    """
    model = Autoencoder(1).to(device, memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    shapes = []
    hooks = [m.register_forward_hook(lambda m, args, out: shapes.append((m, args[0].shape)))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(batch, 3, 64, 64, device=device).contiguous(memory_format=torch.channels_last))
    for h in hooks:
        h.remove()
    convs = []
    for i, (m, shape) in enumerate(shapes):
        x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = m.weight.detach().to(dtype)
        b = m.bias.detach().to(dtype) if m.bias is not None else None
        convs.append((x, w, b, m, i > 0))  # the first convolution needs no gradient for its input

    def one_step():
        for x, w, b, m, input_grad in convs:
            y = F.conv2d(x, w, b, m.stride, m.padding)
            torch.ops.aten.convolution_backward(y, x, w, [w.shape[0]] if b is not None else None, list(m.stride),
                                                list(m.padding), [1, 1], False, [0, 0], 1, [input_grad, True, b is not None])
        sync(device)

    one_step()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        one_step()
        best = min(best, time.perf_counter() - t)
    return batch / best


def codec_speed(device: torch.device, precision: str, pixels: np.ndarray, seconds: float = 2.0) -> dict:
    """Images/s of codec.encode_images and decode_latents, the functions `autoenc encode` and `decode` run (host
    copies included), at `precision`, on batches of len(pixels)."""
    model = Autoencoder(1)
    init_weights(model)
    model = model.to(device, memory_format=torch.channels_last).eval()
    latents = encode_images(model, pixels, precision)
    result = {}
    for name, once in (("encode", lambda: encode_images(model, pixels, precision)),
                       ("decode", lambda: decode_latents(model, latents, precision))):
        once()  # warm-up: the first call picks kernels (a second or more on a GPU)
        count, t = 0, time.perf_counter()
        while time.perf_counter() - t < seconds or count == 0:
            once()  # returns numpy arrays: the device has finished
            count += len(pixels)
        result[name] = count / (time.perf_counter() - t)
    return result


def cli_wall_time(image: Path, weights: Path, repeats: int = 3) -> dict:
    """`autoenc encode one.png` against `python -c "import torch"`, best of a few runs each."""
    def best(cmd):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - t)
        return min(times)
    with tempfile.TemporaryDirectory() as d:
        torch_s = best([sys.executable, "-c", "import torch"])
        enc_s = best([sys.executable, "-m", "autoenc_cli", "encode", str(image), "-o", f"{d}/z.npy", "-w", str(weights)])
    return {"import_torch_s": torch_s, "encode_one_s": enc_s, "ratio": enc_s / torch_s}


def data_memory_100k(tmp: Path) -> float:
    """Peak RSS (MB) of a process reading a whole epoch's batches from a 100,000-image cache."""
    code = (
        "import sys,numpy as np; from autoenc_cli.data.cache import ImageRows\n"
        "rows=ImageRows(sys.argv[1]); order=np.random.default_rng(0).permutation(len(rows))\n"
        "for i in range(0,len(order)-63,64): rows[order[i:i+64]]\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    path = tmp / "rows100k.npy"
    shape = (100_000, 64, 64, 3)
    with open(path, "wb") as f:  # written in chunks: the benchmark itself stays small too
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
        chunk = np.full((1000, 64, 64, 3), 7, np.uint8).tobytes()
        for _ in range(shape[0] // 1000):
            f.write(chunk)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    path.unlink()
    return int(out.stdout.strip()) / 1024


def run(data: str, steps: int = TIMED_STEPS, naive_steps: int = 8, cache_dir: str | None = None, device_name: str = "auto",
        say=print, epochs: int | None = None) -> dict:
    """epochs, when given, times that many epochs instead of `steps` steps."""
    if steps < 1 or naive_steps < 1 or (epochs is not None and epochs < 1):
        raise AutoencError(f"--steps, --epochs and --naive-steps must be at least 1 (got {steps}, {epochs} and {naive_steps})")
    split = split_dataset(data)  # a bad dataset path fails before the minutes of measuring
    device = pick_device(device_name)
    precision = pick_precision("auto", device)
    report = {"machine": machine(), "device": str(device), "precision": precision}
    say(f"machine: {report['machine']['cpu']} ({', '.join(report['machine']['cpu_flags'])}); device {device}, {precision}")
    report["fp32_gflops"] = matmul_gflops(device, torch.float32)
    native_bf16 = precision == "bf16"
    report["bf16_gflops"] = matmul_gflops(device, torch.bfloat16) if native_bf16 or device.type == "cuda" else None
    best = report["bf16_gflops"] if native_bf16 else report["fp32_gflops"]
    report["ceiling_images_per_s"] = best / GFLOP_PER_TRAIN_IMAGE
    say(f"matmul fp32 {report['fp32_gflops']:.0f} GFLOP/s, bf16 {report['bf16_gflops'] or 0:.0f}; "
        f"ceiling {report['ceiling_images_per_s']:.0f} img/s")
    if device.type == "cpu":  # the naive port is a CPU reference; run it before tuning the allocator
        report["naive_images_per_s"] = naive_reference(split.train, naive_steps)
        say(f"naive reference: {report['naive_images_per_s']:.0f} img/s")
    keep_freed_memory()
    batch = TrainConfig(data=data).with_recipe_defaults(device.type).batch_size  # what `autoenc train` picks here
    report["batch"] = batch
    length = ["--epochs", str(epochs)] if epochs else ["--max-steps", str(steps), "--epochs", "100000"]
    report["train"] = train_process(data, length, cache_dir, ["--batch-size", str(batch), "--device", str(device)])
    report["train"]["percent_of_ceiling"] = 100 * report["train"]["images_per_s"] / report["ceiling_images_per_s"]
    say(f"autoenc train {' '.join(length[:2])} --batch-size {batch}: {report['train']['images_per_s']:.0f} img/s end to end "
        f"({report['train']['percent_of_ceiling']:.0f}% of ceiling), loop {report['train']['loop_images_per_s']:.0f} img/s")
    report["convolutions_alone_images_per_s"] = convolutions_alone(device, precision, batch)
    report["convolutions_alone_percent_of_ceiling"] = 100 * report["convolutions_alone_images_per_s"] / report["ceiling_images_per_s"]
    say(f"the 17 convolutions alone (forward + backward): {report['convolutions_alone_images_per_s']:.0f} img/s "
        f"({report['convolutions_alone_percent_of_ceiling']:.0f}% of ceiling)")
    sample = np.stack(readable_squares(split.val[:256] or split.train[:256]))
    report["codec"] = codec_speed(device, precision, sample)
    with tempfile.TemporaryDirectory() as d:
        from autoenc_cli.codec.encoding import save_png
        from autoenc_cli.model.weights import save_weights
        model = Autoencoder(1)
        save_weights(model, Path(d) / "w.safetensors")
        save_png(sample[0], Path(d) / "one.png")
        report["cli"] = cli_wall_time(Path(d) / "one.png", Path(d) / "w.safetensors")
        report["data_peak_rss_mb_100k"] = data_memory_100k(Path(d))
    return report


def table(report: dict) -> list[tuple[str, str]]:
    """(what, value) rows for printing and for docs."""
    m, t = report["machine"], report["train"]
    rows = [
        ("machine", f"{m['cpu']}, {m['cores']} cores" + (f", {m['gpu']}" if "gpu" in m else "")),
        ("flags", ", ".join(m["cpu_flags"]) or "-"),
        ("device / precision", f"{report['device']} / {report['precision']}"),
        ("matmul fp32", f"{report['fp32_gflops']:.0f} GFLOP/s"),
        ("matmul bf16", f"{report['bf16_gflops']:.0f} GFLOP/s" if report["bf16_gflops"] else "not native"),
        ("ceiling", f"{report['ceiling_images_per_s']:.0f} img/s"),
    ]
    if "naive_images_per_s" in report:
        rows.append(("naive reference (fp32 NCHW, Pillow per sample)", f"{report['naive_images_per_s']:.0f} img/s"))
    rows += [
        (f"autoenc train, whole process (batch {report.get('batch', DEFAULT_BATCH)})", f"{t['images_per_s']:.0f} img/s = {t['percent_of_ceiling']:.0f}% of ceiling"
         + (f" = {t['images_per_s'] / report['naive_images_per_s']:.1f}x naive" if "naive_images_per_s" in report else "")),
        ("autoenc train, loop only", f"{t['loop_images_per_s']:.0f} img/s"),
        ("the 17 convolutions alone, forward + backward (bound for any loop on these kernels)",
         f"{report['convolutions_alone_images_per_s']:.0f} img/s = {report['convolutions_alone_percent_of_ceiling']:.0f}% of ceiling"),
        ("train peak memory", f"{t['peak_rss_mb']:.0f} MB"),
        ("data path peak memory, 100,000 images", f"{report['data_peak_rss_mb_100k']:.0f} MB"),
        ("encode / decode", f"{report['codec']['encode']:.0f} / {report['codec']['decode']:.0f} img/s"),
        ("`autoenc encode one.png` vs `import torch`",
         f"{report['cli']['encode_one_s']:.2f} s vs {report['cli']['import_torch_s']:.2f} s = {report['cli']['ratio']:.2f}x"),
    ]
    return rows


def to_json(report: dict) -> str:
    """Valid JSON: a measure that could not be taken (NaN or inf, e.g. too few images) is null."""
    def finite(v):
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [finite(x) for x in v]
        if isinstance(v, float) or hasattr(v, "__float__") and not isinstance(v, (int, str, bool)):
            f = float(v)
            return f if math.isfinite(f) else None
        return v
    return json.dumps(finite(report), indent=2, allow_nan=False)
