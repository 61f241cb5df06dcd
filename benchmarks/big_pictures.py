"""Encode and decode speed and peak memory for big pictures: tiles (the default) against one pass.

    python benchmarks/big_pictures.py PHOTO [--megapixels 1 16 48] [--one-pass-up-to 16]

PHOTO is resized (bicubic) to each size, 4:3, saved as PNG; then `autoenc encode` and `autoenc decode` run as
separate processes, each once with the default --max-memory (tiles) and, up to --one-pass-up-to megapixels,
once with a budget so large that the picture goes through in one window (the one-pass path of before).
Reports megapixels/s over each process's wall time (start-up included) and its peak resident memory (VmHWM),
and checks that the tiled and one-pass decodes are identical or within one level.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.measures.bench import PEAK_WRAPPER, peak_mb  # noqa: E402

ONE_PASS_MB = 10**6  # a budget no picture reaches: one window, as before tiles


def timed(args: list[str], work: Path) -> tuple[float, float]:
    """(seconds, peak MB) of one `autoenc ARGS` process."""
    peak_file = work / "peak"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(peak_file), *args], check=True, capture_output=True)
    return time.perf_counter() - t, peak_mb(peak_file)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("--megapixels", type=float, nargs="+", default=[1, 16, 48])
    ap.add_argument("--one-pass-up-to", type=float, default=16)
    args = ap.parse_args(argv)
    Image.MAX_IMAGE_PIXELS = None
    print("| picture | path | encode MP/s | encode peak MB | decode MP/s | decode peak MB |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        for mp in args.megapixels:
            w = int((mp * 1e6 * 4 / 3) ** 0.5)
            h = int(mp * 1e6 / w)
            src = work / f"{mp:g}mp.png"
            Image.open(args.photo).convert("RGB").resize((w, h), Image.BICUBIC).save(src, compress_level=1)
            decoded = {}
            for path, budget in (("tiles", []), ("one pass", ["--max-memory", str(ONE_PASS_MB)])):
                if path == "one pass" and mp > args.one_pass_up_to:
                    continue
                latent, png = work / f"{path[0]}.npy", work / f"{path[0]}.png"
                for old in (latent, png, work / f"{path[0]}.npy.json"):
                    old.unlink(missing_ok=True)
                enc_s, enc_mb = timed(["encode", str(src), "-o", str(latent), *budget], work)
                dec_s, dec_mb = timed(["decode", str(latent), "-o", str(png), *budget], work)
                decoded[path] = np.asarray(Image.open(png), dtype=np.int16)
                print(f"| {w}x{h} ({w * h / 1e6:.1f} MP) | {path} | {w * h / 1e6 / enc_s:.2f} | {enc_mb:.0f} | "
                      f"{w * h / 1e6 / dec_s:.2f} | {dec_mb:.0f} |", flush=True)
            if len(decoded) == 2:
                diff = np.abs(decoded["tiles"] - decoded["one pass"])
                print(f"|  | tiles vs one pass: max difference {diff.max()}, pixels differing {(diff > 0).mean():.2e} | | | | |")


if __name__ == "__main__":
    main()
