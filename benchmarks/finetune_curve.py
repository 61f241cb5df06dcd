"""Quality against training minutes for several runs (docs/training.md: fine-tuning against training from scratch).

    python benchmarks/finetune_curve.py --images-per-s R -o docs/finetune_curve.png NAME=RUN/log.csv ...

Each run's validation PSNR (its log.csv) against minutes = images seen / R: one speed R for every run, measured
on the machine, so that runs slowed by other work on a shared machine are still compared step for step.
Prints, for each run, the validation PSNR reached by 2, 5, 10, 20 and 30 minutes.
"""

import argparse
import csv
import sys
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.model.architecture import font  # noqa: E402
from autoenc_cli.training.plot import panel, series  # noqa: E402

COLORS = ("#f58518", "#4c78a8", "#54a24b", "#e45756")
MARKS = (2, 5, 10, 20, 30)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="NAME=path/to/log.csv")
    ap.add_argument("--images-per-s", type=float, required=True, help="training speed of this machine at the runs' batch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--title", default="")
    args = ap.parse_args(argv)
    lines = []
    print("| run | " + " | ".join(f"{m} min" for m in MARKS) + " |")
    print("|---|" + "---:|" * len(MARKS))
    for (name, log), color in zip((r.split("=", 1) for r in args.runs), COLORS):
        with open(log, newline="") as f:
            rows = list(csv.DictReader(f))
        points = [(step * args.batch / args.images_per_s / 60, psnr) for step, psnr in series(rows, "val_psnr")]
        lines.append((points, color, name, False))
        reached = [max((p for m, p in points if m <= mark), default=None) for mark in MARKS]
        print(f"| {name} | " + " | ".join("-" if r is None or points[-1][0] < mark * 0.95 else f"{r:.2f}"
                                          for r, mark in zip(reached, MARKS)) + " |")
    img = Image.new("RGB", (760, 460), "white")
    draw = ImageDraw.Draw(img)
    draw.text((20, 10), args.title, fill="black", font=font(16))
    panel(draw, (80, 90, 720, 400), "validation PSNR (dB), pictures never trained on", lines, log_y=False,
          x_label=f"minutes of training at {args.images_per_s:,.0f} images/s")
    img.save(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
