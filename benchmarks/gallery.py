"""The gallery of docs/training.md: originals and reconstructions of evenly spaced validation images.

    python benchmarks/gallery.py DATA [-w WEIGHTS] [-o docs/gallery.png] [--count 24]
"""

import argparse

import numpy as np
import torch

from autoenc_cli.codec.encoding import comparison_grid, save_png
from autoenc_cli.data.cache import cached_images
from autoenc_cli.data.splits import split_dataset
from autoenc_cli.codec.encoding import reconstruct
from autoenc_cli.model.weights import load_model, resolve_weights


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("-w", "--weights", default=None)
    ap.add_argument("-o", "--out", default="docs/gallery.png")
    ap.add_argument("--count", type=int, default=24)
    args = ap.parse_args(argv)
    val = np.asarray(cached_images(split_dataset(args.data).val).pixels)
    picked = val[np.linspace(0, len(val) - 1, args.count).round().astype(int)]
    model, _ = load_model(resolve_weights(args.weights))
    with torch.inference_mode():
        recon = reconstruct(model.eval(), picked)
    save_png(comparison_grid(picked, recon), args.out)
    print(f"{args.out}: {args.count} validation images of {args.data}, each above its reconstruction")


if __name__ == "__main__":
    main()
