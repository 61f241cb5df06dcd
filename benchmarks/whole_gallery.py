"""Whole photos at 1:1 for docs/training.md: original, bicubic at the same count of numbers, and each weights file.

    python benchmarks/whole_gallery.py PHOTO... -w OLD.safetensors -w NEW.safetensors [-o docs/whole_gallery.png]

Each photo is reconstructed whole, in one pass, as `autoenc encode` + `decode` do, and scored whole; the
picture shows the same window (at most --side pixels, the photo's centre) of every version at 1:1, labelled
with the whole photo's PSNR, so stripes and colour shifts on smooth areas are visible as they are.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.codec.encoding import reconstruct_picture, save_png  # noqa: E402
from autoenc_cli.data.reading import open_image  # noqa: E402
from autoenc_cli.measures.evaluate import bicubic_same_numbers  # noqa: E402
from autoenc_cli.codec.metrics import psnr_per_image  # noqa: E402
from autoenc_cli.model.weights import load_model  # noqa: E402

LABEL_HEIGHT = 18


def labelled(pixels: np.ndarray, text: str) -> Image.Image:
    img = Image.new("RGB", (pixels.shape[1], pixels.shape[0] + LABEL_HEIGHT), "white")
    img.paste(Image.fromarray(pixels), (0, LABEL_HEIGHT))
    ImageDraw.Draw(img).text((3, 2), text, fill="black", font=ImageFont.load_default(13))
    return img


def centre(pixels: np.ndarray, side: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return pixels[top:top + side, left:left + side]


def row(photo: Path, models: list, side: int) -> Image.Image:
    pixels = np.asarray(open_image(photo), dtype=np.uint8)
    versions = [("original", pixels), ("bicubic, 1/6 of the numbers", bicubic_same_numbers(pixels))]
    versions += [(name, reconstruct_picture(model, pixels)) for name, model in models]
    tiles = []
    for name, v in versions:
        score = "" if v is pixels else f" {float(psnr_per_image(pixels[None], v[None])[0]):.2f} dB"
        tiles.append(labelled(np.ascontiguousarray(centre(v, side)), f"{name}{score}"))
    out = Image.new("RGB", (sum(t.width + 4 for t in tiles), max(t.height for t in tiles)), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 4
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("-w", "--weights", action="append", required=True, type=Path)
    ap.add_argument("-o", "--out", default="docs/whole_gallery.png")
    ap.add_argument("--side", type=int, default=256, help="window of each photo shown at 1:1")
    args = ap.parse_args(argv)
    models = [(w.stem, load_model(w)[0]) for w in args.weights]
    rows = [row(p, models, args.side) for p in args.photos]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 6 for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + 6
    save_png(np.asarray(sheet), args.out)
    print(f"{args.out}: {len(rows)} photos, original, bicubic and {len(models)} weights each")


if __name__ == "__main__":
    main()
