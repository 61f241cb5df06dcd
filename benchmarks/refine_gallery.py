"""A gallery row where refinement shows: detailed regions of held-out photos, each as the original, the encoder's
one pass, and refined 10 and 50 steps, shown at 2x with each one's PSNR.

    python benchmarks/refine_gallery.py PHOTOS docs/refine_gallery.png [-w WEIGHTS] [--count 4] [--side 128]

The regions are the ones where the one pass is furthest from the original (the worst 128x128 window of each of
the `count` photos with the most detail), as a user would look for the difference.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from autoenc_cli.api import load
from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.data.listing import find_images
from autoenc_cli.data.reading import open_image
from autoenc_cli.training.plot import font

COLUMNS = (("original", None), ("one pass", 0), ("--refine 10", 10), ("--refine 50", 50))
SCALE = 2


def worst_window(pixels: np.ndarray, recon: np.ndarray, side: int) -> tuple[int, int]:
    """The top-left corner of the side x side window (on a grid of side / 2) where recon is furthest from pixels."""
    error = ((pixels.astype(np.float64) - recon) ** 2).mean(2)
    best, corner = -1.0, (0, 0)
    for y in range(0, pixels.shape[0] - side + 1, side // 2):
        for x in range(0, pixels.shape[1] - side + 1, side // 2):
            e = error[y:y + side, x:x + side].mean()
            if e > best:
                best, corner = e, (y, x)
    return corner


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("-w", "--weights", default=None)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--side", type=int, default=128)
    args = ap.parse_args(argv)
    ae = load(args.weights)
    photos = [np.asarray(open_image(f), dtype=np.uint8) for f in find_images(args.photos)]
    photos = [p for p in photos if min(p.shape[:2]) >= args.side and p.shape[0] * p.shape[1] <= 400_000]
    detail = [np.abs(np.diff(p.astype(np.int16), axis=1)).mean() for p in photos]
    chosen = [photos[i] for i in np.argsort(detail)[::-1][:args.count]]
    side, label_h = args.side * SCALE, 18
    canvas = Image.new("RGB", (len(COLUMNS) * (side + 8) + 8, args.count * (side + label_h + 8) + 30), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 6), "held-out photos, the region where the one pass is worst: refinement with the same weights",
              fill="black", font=font(13))
    for row, photo in enumerate(chosen):
        y, x = worst_window(photo, ae.reconstruct(photo), args.side)
        region = np.ascontiguousarray(photo[y:y + args.side, x:x + args.side])
        for col, (name, steps) in enumerate(COLUMNS):
            shown = region if steps is None else ae.reconstruct(region, refine=steps)
            left, top = 8 + col * (side + 8), 30 + row * (side + label_h + 8)
            canvas.paste(Image.fromarray(shown).resize((side, side), Image.NEAREST), (left, top + label_h))
            score = "" if steps is None else f", {float(psnr_per_image(region[None], shown[None])[0]):.2f} dB"
            draw.text((left, top + 2), name + score, fill="black", font=font(12))
    canvas.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
