"""How well `autoenc score` finds defects: clean held-out pictures against the same pictures with synthetic defects.

    python benchmarks/anomaly.py CLEAN_DIR -w WEIGHTS --out RESULT_DIR [--max-side 512]

The clean pictures are split in two by name (a salted hash): the REFERENCE half sets the threshold (the 99th
percentile of its errors, as `autoenc score --reference` does) and the TEST half is scored clean and with each
kind of defect:

    scratch   a thin bright or dark line, 2-3 px wide, across part of the picture
    blot      a filled ellipse of one dark colour, about 6% of the short side across
    patch     a square cut from another test picture (turned upside down), 12% of the short side across; with
              --donors DIR, from the pictures there instead (a photo pasted into a document page, say)

Printed (and written to RESULT_DIR/anomaly.json): for each defect kind and measure, the ROC AUC of defective
against clean test pictures (0.5 is chance), the share of pairs whose defective copy scores worse than its own
clean picture, and the detection rate at the reference threshold with the false-alarm rate on clean test
pictures. RESULT_DIR/examples/ gets one heatmap per defect kind (`autoenc score --heatmaps` draws the same).
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.codec.encoding import read_picture, reconstruct_picture, save_png  # noqa: E402
from autoenc_cli.data.listing import find_images  # noqa: E402
from autoenc_cli.measures.heatmap import write_heatmap  # noqa: E402
from autoenc_cli.measures.score import MEASURES, measure_error, score_picture, threshold_at  # noqa: E402
from autoenc_cli.model.weights import load_model, resolve_weights  # noqa: E402

DEFECTS = ("scratch", "blot", "patch")


def is_reference(path: Path) -> bool:
    return hashlib.sha1(b"anomaly-split:" + path.name.encode()).digest()[0] % 2 == 0


def shrink(pixels: np.ndarray, max_side: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((round(w * scale), round(h * scale)), Image.LANCZOS))


def with_defect(pixels: np.ndarray, kind: str, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = Image.fromarray(pixels.copy())
    h, w = pixels.shape[:2]
    side = min(h, w)
    draw = ImageDraw.Draw(img)
    if kind == "scratch":
        x0, y0 = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.25, 0.5) * side
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        shade = int(rng.choice([20, 235]))
        draw.line([(x0, y0), (x1, y1)], fill=(shade, shade, shade), width=int(rng.integers(2, 4)))
    elif kind == "blot":
        r = 0.03 * side * rng.uniform(0.8, 1.2)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        colour = tuple(int(c) for c in rng.integers(10, 70, 3))
        draw.ellipse([cx - r, cy - r * rng.uniform(0.6, 1.0), cx + r, cy + r * rng.uniform(0.6, 1.0)], fill=colour)
    else:
        s = max(8, int(0.12 * side))
        dy, dx = rng.integers(0, donor.shape[0] - s + 1), rng.integers(0, donor.shape[1] - s + 1)
        piece = Image.fromarray(donor[dy:dy + s, dx:dx + s]).rotate(180)
        img.paste(piece, (int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))))
    return np.asarray(img)


def roc_auc(positive: list[float], negative: list[float]) -> float:
    """P(a positive scores above a negative), ties counted half (the Mann-Whitney U statistic)."""
    p, n = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clean", type=Path)
    ap.add_argument("-w", "--weights", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--percentile", type=float, default=99.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--donors", type=Path, help="cut the pasted patches from these pictures (default: the other test pictures)")
    args = ap.parse_args()
    model, _ = load_model(resolve_weights(args.weights))
    rng = np.random.default_rng(args.seed)
    files = find_images(args.clean)
    work = args.out / "pictures"
    (work / "clean").mkdir(parents=True, exist_ok=True)
    pictures = {}
    for f in files:
        pictures[f] = shrink(read_picture(f), args.max_side)
        save_png(pictures[f], work / "clean" / f"{f.stem}.png")
    reference = [work / "clean" / f"{f.stem}.png" for f in files if is_reference(f)]
    test = [f for f in files if not is_reference(f)]
    made = {"clean": [work / "clean" / f"{f.stem}.png" for f in test]}
    donors = [shrink(read_picture(f), args.max_side) for f in find_images(args.donors)] if args.donors else None
    for kind in DEFECTS:
        (work / kind).mkdir(exist_ok=True)
        made[kind] = []
        for i, f in enumerate(test):
            donor = donors[i % len(donors)] if donors else pictures[test[(i + 1) % len(test)]]
            path = work / kind / f"{f.stem}.png"
            save_png(with_defect(pictures[f], kind, donor, rng), path)
            made[kind].append(path)
    ref_scores = [score_picture(model, p)[0] for p in reference]  # in file order: pairs are compared below
    scores = {kind: [score_picture(model, p)[0] for p in paths] for kind, paths in made.items()}
    report = {"weights": str(resolve_weights(args.weights)), "clean_dir": str(args.clean), "reference": len(ref_scores),
              "test": len(scores["clean"]), "max_side": args.max_side, "donors": str(args.donors) if args.donors else "other test pictures", "percentile": args.percentile, "results": {}}
    for by in MEASURES:
        threshold = threshold_at([measure_error(s, by) for s in ref_scores], args.percentile)
        clean = [measure_error(s, by) for s in scores["clean"]]
        false_alarms = float(np.mean(np.asarray(clean) > threshold))
        for kind in DEFECTS:
            bad = [measure_error(s, by) for s in scores[kind]]
            report["results"][f"{kind}/{by}"] = {
                "auc": roc_auc(bad, clean), "pair_worse": float(np.mean(np.asarray(bad) > np.asarray(clean))),
                "detected": float(np.mean(np.asarray(bad) > threshold)), "false_alarms": false_alarms}
    write_examples(model, made, args.out / "examples")
    (args.out / "anomaly.json").write_text(json.dumps(report, indent=1))
    print(f"{report['test']} test pictures (+ each with a defect), {report['reference']} reference; "
          f"threshold: the {args.percentile:g}th percentile of the reference")
    print(f"{'defect':8} {'measure':7} {'AUC':>6} {'pair':>6} {'detected':>9} {'false alarms':>13}")
    for key, r in report["results"].items():
        kind, by = key.split("/")
        print(f"{kind:8} {by:7} {r['auc']:6.3f} {r['pair_worse']:6.2f} {r['detected']:9.2f} {r['false_alarms']:13.2f}")


def write_examples(model, made: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind in DEFECTS:
        path = made[kind][0]
        pixels = read_picture(path)
        write_heatmap(folder / f"{kind}.png", pixels, reconstruct_picture(model, pixels), f"{kind}: {path.name}")


if __name__ == "__main__":
    main()
