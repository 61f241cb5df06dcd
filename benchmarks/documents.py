"""A kind of picture the bundled weights have never seen: greyscale pages of text, as a scanner makes them.

    python benchmarks/documents.py OUT [--train 120 --heldout 20]

Writes OUT/train/page_NNN.jpg and OUT/heldout/page_NNN.jpg (1,240 x 1,754: A4 at 150 dpi), each page a
different seed: off-white paper with a slight shading and grain, a heading, paragraphs of words drawn from
this project's own docs in DejaVu Serif, Sans or Mono at 11-16 points, now and then a ruled table, turned
by up to 1 degree, blurred a little, greyscale JPEG at quality 80-92. Used by docs/training.md to measure
fine-tuning against training from scratch (issue 21); nothing here is bundled or committed.
"""

import argparse
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
FONTS = Path("/usr/share/fonts/truetype/dejavu")
FACES = ("DejaVuSerif.ttf", "DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif-Bold.ttf")
PAGE = (1240, 1754)  # A4 at 150 dpi
MARGIN = 110


def words() -> list[str]:
    text = " ".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"])
    return re.findall(r"[A-Za-z][A-Za-z'-]{1,14}[.,;:]?", text)


def paper(rng: np.random.Generator) -> Image.Image:
    shade = np.linspace(0, rng.uniform(-12, 12), PAGE[1])[:, None] + np.linspace(0, rng.uniform(-8, 8), PAGE[0])[None]
    grain = rng.normal(0, rng.uniform(1.5, 4.0), (PAGE[1], PAGE[0]))
    return Image.fromarray(np.clip(rng.uniform(228, 248) + shade + grain, 0, 255).astype(np.uint8), "L")


def page(rng: np.random.Generator, vocabulary: list[str]) -> Image.Image:
    img = paper(rng)
    draw = ImageDraw.Draw(img)
    ink = int(rng.uniform(10, 60))
    face = FONTS / FACES[rng.integers(len(FACES) - 1)]
    size = int(rng.uniform(11, 16) * 150 / 72)  # points at 150 dpi
    body = ImageFont.truetype(str(face), size)
    y = MARGIN
    heading = " ".join(rng.choice(vocabulary, rng.integers(2, 6))).title()
    draw.text((MARGIN, y), heading, fill=ink, font=ImageFont.truetype(str(FONTS / FACES[3]), int(size * 1.6)))
    y += int(size * 3)
    while y < PAGE[1] - MARGIN - size:
        if rng.random() < 0.12:
            y = table(draw, rng, vocabulary, y, body, ink, size)
            continue
        line, x = [], MARGIN + (int(size * 2) if rng.random() < 0.2 else 0)
        for word in rng.choice(vocabulary, 40):
            if draw.textlength(" ".join(line + [word]), font=body) > PAGE[0] - MARGIN - x:
                break
            line.append(str(word))
        draw.text((x, y), " ".join(line), fill=ink, font=body)
        y += int(size * (1.35 if rng.random() < 0.9 else 2.6))  # now and then a paragraph break
    img = img.rotate(rng.uniform(-1, 1), resample=Image.BICUBIC, fillcolor=int(rng.uniform(228, 248)))
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))


def table(draw, rng, vocabulary, y, font, ink, size) -> int:
    columns, rows = int(rng.integers(2, 5)), int(rng.integers(3, 8))
    width = (PAGE[0] - 2 * MARGIN) // columns
    for r in range(rows):
        draw.line((MARGIN, y, PAGE[0] - MARGIN, y), fill=ink, width=2 if r == 0 else 1)
        for c in range(columns):
            draw.text((MARGIN + c * width + 8, y + 6), str(rng.choice(vocabulary)), fill=ink, font=font)
        y += int(size * 1.8)
    draw.line((MARGIN, y, PAGE[0] - MARGIN, y), fill=ink, width=2)
    return y + size * 2


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=120)
    ap.add_argument("--heldout", type=int, default=20)
    args = ap.parse_args(argv)
    vocabulary = words()
    for split, count, first in (("train", args.train, 0), ("heldout", args.heldout, 100_000)):
        (args.out / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng(first + i)
            page(rng, vocabulary).save(args.out / split / f"page_{i:03d}.jpg", quality=int(rng.integers(80, 93)))
    print(f"{args.out}: {args.train} training pages, {args.heldout} held out")


if __name__ == "__main__":
    main()
