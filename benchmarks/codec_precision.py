"""What bf16 costs and gains in the CPU codec (encode + decode, as `autoenc encode --precision bf16` and `decode` run
them), measured in one run against fp32 on the same pictures:

    python benchmarks/codec_precision.py CROPS WHOLE [-w WEIGHTS] [--limit 200]

CROPS: a folder of 64x64 pictures (benchmarks/other_photos.py's held-out crops); WHOLE: a folder of photos scored
at their own size. Each picture goes through reconstruct_picture in fp32 and then in bf16, one after the other, so
that a loaded machine slows both alike; prints mean PSNR of each, their difference, and the time ratio.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from autoenc_cli.codec.encoding import reconstruct_picture
from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.data.listing import find_images
from autoenc_cli.data.reading import open_image
from autoenc_cli.model.hardware import cpu_has_native_bf16
from autoenc_cli.model.weights import load_model, resolve_weights

PRECISIONS = ("fp32", "bf16")


def measure(model, files: list[Path]) -> dict:
    psnr = {p: [] for p in PRECISIONS}
    seconds = dict.fromkeys(PRECISIONS, 0.0)
    for f in files:
        pixels = np.asarray(open_image(f), dtype=np.uint8)
        for p in PRECISIONS:
            t = time.perf_counter()
            out = reconstruct_picture(model, pixels, precision=p)
            seconds[p] += time.perf_counter() - t
            psnr[p].append(psnr_per_image(out[None], pixels[None]).item())
    return {p: {"psnr": float(np.mean(psnr[p])), "seconds": seconds[p]} for p in PRECISIONS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("crops", type=Path)
    ap.add_argument("whole", type=Path)
    ap.add_argument("-w", "--weights", type=Path)
    ap.add_argument("--limit", type=int, default=200, help="crops measured (all whole photos are)")
    args = ap.parse_args()
    model, _ = load_model(resolve_weights(args.weights))
    model.eval()
    print(f"native bf16 on this CPU: {cpu_has_native_bf16()}")
    print("| pictures | fp32 PSNR | bf16 PSNR | bf16 - fp32 | fp32 s | bf16 s | bf16 speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, files in (("64x64 crops", find_images(args.crops)[:args.limit]), ("whole photos", find_images(args.whole))):
        r = measure(model, files)
        print(f"| {name} ({len(files)}) | {r['fp32']['psnr']:.3f} | {r['bf16']['psnr']:.3f} | "
              f"{r['bf16']['psnr'] - r['fp32']['psnr']:+.3f} dB | {r['fp32']['seconds']:.1f} | {r['bf16']['seconds']:.1f} | "
              f"{r['fp32']['seconds'] / r['bf16']['seconds']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
