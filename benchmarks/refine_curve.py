"""The refinement curve: mean PSNR against steps of `--refine` and against seconds per megapixel, on 64x64 crops
and on whole photos, beside bicubic, JPEG at 1 KB and PCA-2048; a table, a JSON and a labelled PNG.

    python benchmarks/refine_curve.py CROPS PHOTOS [-w WEIGHTS] [--steps 0,5,10,25,50,100,200]
        [--whole-steps 0,5,10,25] [--precision fp32,bf16] [--limit-crops N] [--limit-photos N]
        [--pca 30.71,33.13] [--png docs/refine_curve.png] [--json refine_curve.json]

Each precision refines every picture once, to the largest step count, and reads the PSNR at each smaller count on
the way (refine.py's rate is constant, so the latent after k of n steps is the latent of a k-step refinement).
Seconds count the encoder's pass and the refinement steps, not the PSNR read-outs: what `autoenc encode --refine k`
spends on the network, per megapixel of picture. Crops go through in batches as `eval --refine` runs them; photos
one at a time at their own size, as `encode --refine` and `eval --whole --refine` do (tiles within 1,024 MB).
PCA-2048's scores come from benchmarks/pca_reference.py (--pca CROPS_DB,WHOLE_DB), which takes minutes to fit.
"""

import argparse
import json
import platform
import subprocess
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from autoenc_cli import __version__
from autoenc_cli.codec.encoding import decode_latents, encode_images, pad_to_multiple
from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.data.listing import find_images
from autoenc_cli.data.reading import open_image
from autoenc_cli.codec.refine import refine
from autoenc_cli.codec.tiles import decode_tiled, encode_tiled
from autoenc_cli.measures.evaluate import bicubic, bicubic_same_numbers, jpeg
from autoenc_cli.model.hardware import cpuinfo
from autoenc_cli.model.weights import load_model, resolve_weights
from autoenc_cli.training.plot import font, panel

CHUNK = 256  # crops per batch, as eval runs them
COLORS = {"fp32": "#1f77b4", "bf16": "#d62728", "bicubic": "#7f7f7f", "jpeg": "#2ca02c", "pca": "#9467bd"}


class Clock:
    """Seconds of network work: the observer's read-outs are subtracted."""

    def __init__(self):
        self.spent, self.paused = 0.0, 0.0
        self.start = time.perf_counter()

    def pause(self):
        self.paused = time.perf_counter()

    def resume(self):
        self.start += time.perf_counter() - self.paused

    def lap(self) -> float:
        now = time.perf_counter()
        self.spent += now - self.start
        self.start = now
        return self.spent


def crops_curve(model, pixels: np.ndarray, steps: list[int], precision: str) -> dict:
    """Mean PSNR and seconds per megapixel at each step count, for N x 64 x 64 x 3 crops."""
    psnr = {k: [] for k in steps}
    seconds = {k: 0.0 for k in steps}
    for start in range(0, len(pixels), CHUNK):
        chunk = pixels[start:start + CHUNK]
        batch = torch.from_numpy(chunk).permute(0, 3, 1, 2)
        clock = Clock()
        latent = torch.from_numpy(encode_images(model, chunk, precision))

        def read(step, z, chunk=chunk, clock=clock):
            if step in psnr:
                seconds[step] += clock.lap()
                clock.pause()
                out = decode_latents(model, z.numpy())
                psnr[step] += psnr_per_image(chunk, out).tolist()
                clock.resume()

        read(0, latent)
        refine(model, batch, latent, max(steps), precision=precision, observe=read)
    megapixels = pixels.shape[0] * pixels.shape[1] * pixels.shape[2] / 1e6
    return {k: {"psnr": float(np.mean(psnr[k])), "s_per_mp": seconds[k] / megapixels} for k in steps}


def photos_curve(model, photos: list[np.ndarray], steps: list[int], precision: str, progress) -> dict:
    """Mean PSNR over photos (each at its own size) and seconds per megapixel at each step count."""
    psnr = {k: [] for k in steps}
    seconds = {k: 0.0 for k in steps}
    for i, pixels in enumerate(photos):
        h, w = pixels.shape[:2]
        padded = torch.from_numpy(pad_to_multiple(pixels)).permute(2, 0, 1)[None]
        clock = Clock()
        latent = torch.from_numpy(encode_tiled(model, padded, None, precision))[None]

        def read(step, z, pixels=pixels, clock=clock):
            if step in psnr:
                seconds[step] += clock.lap()
                clock.pause()
                out = decode_tiled(model, z, None)[:h, :w]
                psnr[step].append(float(psnr_per_image(pixels[None], out[None])[0]))
                clock.resume()

        read(0, latent)
        refine(model, padded, latent, max(steps), (w, h), precision=precision, observe=read)
        progress(i + 1, len(photos))
    megapixels = sum(p.shape[0] * p.shape[1] for p in photos) / 1e6
    return {k: {"psnr": float(np.mean(psnr[k])), "s_per_mp": seconds[k] / megapixels} for k in steps}


def baselines(crops: np.ndarray, photos: list[np.ndarray], pca: list[float] | None) -> dict:
    jpeg_out = jpeg(crops)[0]
    out = {"crops": {"bicubic": float(psnr_per_image(crops, bicubic(crops)).mean()),
                     "jpeg": float(psnr_per_image(crops, jpeg_out).mean())},
           "whole": {"bicubic": float(np.mean([psnr_per_image(p[None], bicubic_same_numbers(p)[None])[0] for p in photos]))}}
    if pca:
        out["crops"]["pca"], out["whole"]["pca"] = pca
    return out


def draw(report: dict, path: Path) -> None:
    """Four panels: crops and photos, PSNR against steps and against seconds per megapixel."""
    img = Image.new("RGB", (1200, 900), "white")
    d = ImageDraw.Draw(img)
    d.text((20, 10), report["title"], fill="black", font=font(15))
    d.text((20, 32), report["where"], fill="#444444", font=font(12))
    for row, kind in enumerate(("crops", "whole")):
        for col, axis in enumerate(("steps", "s_per_mp")):
            lines = []
            for precision, curve in report[kind].items():
                points = [((int(k) if axis == "steps" else v["s_per_mp"]), v["psnr"]) for k, v in curve.items()]
                if axis == "steps":
                    points = [(max(x, 1), y) for x, y in points]  # step 0 drawn at 1 on the log axis
                lines.append((points, COLORS[precision], f"refined, {precision}", True))
            xs = [p[0] for line in lines for p in line[0]]
            for name, value in report["baselines"][kind].items():
                lines.append(([(min(xs), value), (max(xs), value)], COLORS[name], name, False))
            what = "64x64 crops" if kind == "crops" else "whole photos"
            x_label = "steps of refinement (0 drawn at 1)" if axis == "steps" else "seconds per megapixel (encoder + steps)"
            panel(d, (90 + col * 590, 120 + row * 400, 560 + col * 590, 440 + row * 400),
                  f"{what}: mean PSNR (dB)", lines, log_y=False, x_label=x_label, log_x=True)
    img.save(path)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("crops", type=Path, help="64x64 pictures (benchmarks/other_photos.py makes them)")
    ap.add_argument("photos", type=Path, help="whole photos, each scored at its own size")
    ap.add_argument("-w", "--weights", default=None)
    ap.add_argument("--steps", default="0,5,10,25,50,100,200", help="step counts read on the crops")
    ap.add_argument("--whole-steps", default="0,5,10,25", help="step counts read on the photos")
    ap.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32, bf16")
    ap.add_argument("--limit-crops", type=int, default=None)
    ap.add_argument("--limit-photos", type=int, default=None)
    ap.add_argument("--pca", default=None, help="PCA-2048's crops and whole dB, from benchmarks/pca_reference.py")
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model, _ = load_model(resolve_weights(args.weights), "cpu")
    model.eval()
    crop_files = find_images(args.crops)[:args.limit_crops]
    crops = np.stack([np.asarray(open_image(f), dtype=np.uint8) for f in crop_files])
    photos = [np.asarray(open_image(f), dtype=np.uint8) for f in find_images(args.photos)[:args.limit_photos]]
    steps = sorted({int(s) for s in args.steps.split(",")} | {0})
    whole_steps = sorted({int(s) for s in args.whole_steps.split(",")} | {0})
    report = {"title": f"autoenc {__version__} (commit {git_commit()}): refinement of the bundled weights' latents"
                       if args.weights is None else f"autoenc {__version__} (commit {git_commit()}): {args.weights}",
              "where": f"{cpuinfo('model name') or platform.processor()}, {torch.get_num_threads()} threads, "
                       f"torch {torch.__version__}, {date.today().isoformat()}; {len(crops)} crops of {args.crops.name}, "
                       f"{len(photos)} photos of {args.photos.name} ({sum(p.shape[0] * p.shape[1] for p in photos) / 1e6:.1f} MP)",
              "baselines": baselines(crops, photos, [float(v) for v in args.pca.split(",")] if args.pca else None),
              "crops": {}, "whole": {}}
    for precision in args.precision.split(","):
        report["crops"][precision] = crops_curve(model, crops, steps, precision)
        print(f"{precision} crops: " + ", ".join(f"{k}: {v['psnr']:.2f} dB {v['s_per_mp']:.1f} s/MP"
                                                 for k, v in report["crops"][precision].items()), flush=True)
        report["whole"][precision] = photos_curve(model, photos, whole_steps, precision, lambda d, t: None)
        print(f"{precision} whole: " + ", ".join(f"{k}: {v['psnr']:.2f} dB {v['s_per_mp']:.1f} s/MP"
                                                 for k, v in report["whole"][precision].items()), flush=True)
    print(report["where"])
    print("baselines:", json.dumps(report["baselines"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.png:
        draw(report, args.png)
    return report


if __name__ == "__main__":
    main()
