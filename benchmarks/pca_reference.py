"""The linear reference: PCA with as many components as the latent has numbers, scored as `autoenc eval` scores.

    python benchmarks/pca_reference.py FIT_PHOTOS --crops CROPS [--whole PHOTOS] [--components 2048] [--samples 60000]

PCA with 2,048 components is the best linear code of a 64x64x3 picture in the latent's count of numbers (4x4x128):
the number the network has to beat to be worth its nonlinearity. It is fitted on 64x64 windows of FIT_PHOTOS,
cut as training cuts them (at native scale and at half scale, spread evenly over the photos; a 64x64 file is
one window), then scored on:
- CROPS: 64x64 pictures, as `autoenc eval CROPS` reads and scores them (evaluate.decoded_pictures, Scores.add);
- PHOTOS: whole pictures at their own size, as `autoenc eval PHOTOS --whole` scores them (Scores.add_picture):
  each cut into 64x64 tiles (edges padded by repeating the last row and column, then cropped back).
Reconstructions are rounded to 8 bits, as the network's are. Fit on photos that are not among those scored.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.data import find_images, open_image  # noqa: E402
from autoenc_cli.errors import AutoencError  # noqa: E402
from autoenc_cli.evaluate import Scores, decoded_pictures, eval_files  # noqa: E402
from autoenc_cli.model import IMAGE_SIZE  # noqa: E402

SIDE = IMAGE_SIZE
DIMS = SIDE * SIDE * 3
CHUNK = 1024  # windows per matrix product: 48 MB of float32


def photo_windows(pixels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random 64x64 windows of one H x W x 3 picture, half of them from its half-scale copy."""
    if pixels.shape[:2] == (SIDE, SIDE):
        return pixels[None]
    half = pixels[: pixels.shape[0] // 2 * 2, : pixels.shape[1] // 2 * 2].astype(np.float32)
    half = ((half[0::2, 0::2] + half[1::2, 0::2] + half[0::2, 1::2] + half[1::2, 1::2]) / 4).round().astype(np.uint8)
    windows = []
    for i in range(count):
        level = half if i % 2 and min(half.shape[:2]) >= SIDE else pixels
        y = rng.integers(0, level.shape[0] - SIDE + 1)
        x = rng.integers(0, level.shape[1] - SIDE + 1)
        windows.append(level[y:y + SIDE, x:x + SIDE])
    return np.stack(windows)


def fit_windows(folder: Path, samples: int, seed: int) -> np.ndarray:
    """N x 12,288 uint8 training windows of the photos in `folder` (photos smaller than 64x64 are skipped)."""
    rng = np.random.default_rng(seed)
    files = find_images(folder)
    per_photo = max(1, samples // max(1, len(files)))
    windows = []
    for path in files:
        try:
            pixels = np.asarray(open_image(path), dtype=np.uint8)
        except AutoencError:
            continue
        if min(pixels.shape[:2]) >= SIDE:
            windows.append(photo_windows(pixels, per_photo, rng).reshape(-1, DIMS))
    if not windows:
        raise SystemExit(f"{folder}: no picture of 64x64 or more")
    return np.concatenate(windows)


class PCA:
    """Mean and the top components of N x 12,288 windows (pixels in [0, 1])."""

    def __init__(self, windows: np.ndarray, components: int):
        self.mean = torch.from_numpy(sum(windows[s:s + CHUNK].astype(np.float64).sum(0) for s in range(0, len(windows), CHUNK))
                                     / (255.0 * len(windows))).float()
        values, vectors = (self.gram_eigen if len(windows) < DIMS else self.covariance_eigen)(windows)
        order = values.argsort(descending=True)[:components]
        self.basis = vectors[:, order].contiguous()  # 12,288 x k
        self.kept = float(values[order].clamp_min(0).sum() / values.clamp_min(0).sum())

    def centred(self, windows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(windows).reshape(len(windows), DIMS)).float() / 255.0 - self.mean

    def covariance_eigen(self, windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        covariance = torch.zeros(DIMS, DIMS, dtype=torch.float64)
        for start in range(0, len(windows), CHUNK):  # float32 products, summed in float64
            x = self.centred(windows[start:start + CHUNK])
            covariance += (x.T @ x).double()
        return torch.linalg.eigh(covariance.float())  # float32: 72 s for 12,288 x 12,288 on 2 cores

    def gram_eigen(self, windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Fewer windows than dimensions: the same components from the N x N Gram matrix, far faster."""
        x = self.centred(windows).double()
        values, u = torch.linalg.eigh(x @ x.T)
        vectors = (x.T @ u) / values.clamp_min(1e-12).sqrt()
        return values.float(), vectors.float()

    def reconstruct(self, pixels: np.ndarray) -> np.ndarray:
        """N x 64 x 64 x 3 uint8 -> the same, through the k numbers of each window."""
        y = (self.centred(pixels) @ self.basis) @ self.basis.T + self.mean
        return (y * 255.0).round().clamp(0, 255).to(torch.uint8).numpy().reshape(pixels.shape)


def reconstruct_picture(pca: PCA, pixels: np.ndarray) -> np.ndarray:
    """A whole H x W x 3 picture, tile by tile."""
    h, w = pixels.shape[:2]
    padded = np.pad(pixels, ((0, -h % SIDE), (0, -w % SIDE), (0, 0)), mode="edge")
    rows, cols = padded.shape[0] // SIDE, padded.shape[1] // SIDE
    tiles = padded.reshape(rows, SIDE, cols, SIDE, 3).transpose(0, 2, 1, 3, 4).reshape(-1, SIDE, SIDE, 3)
    out = np.concatenate([pca.reconstruct(tiles[s:s + CHUNK]) for s in range(0, len(tiles), CHUNK)])
    out = out.reshape(rows, cols, SIDE, SIDE, 3).transpose(0, 2, 1, 3, 4).reshape(padded.shape)
    return out[:h, :w]


def score_crops(pca: PCA, folder: Path) -> dict:
    pixels, _ = decoded_pictures(folder)
    scores = Scores()
    for start in range(0, len(pixels), CHUNK):
        chunk = np.array(pixels[start:start + CHUNK])
        scores.add(chunk, pca.reconstruct(chunk))
    return {"images": len(pixels)} | scores.summary()


def score_whole(pca: PCA, folder: Path) -> dict:
    scores = Scores()
    for path in eval_files(folder):
        pixels = np.asarray(open_image(path), dtype=np.uint8)
        scores.add_picture(pixels, reconstruct_picture(pca, pixels))
    return {"pictures": len(scores.psnr)} | scores.summary()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fit", type=Path, help="photos to fit on (not the scored ones)")
    ap.add_argument("--crops", type=Path, required=True, help="64x64 pictures, scored as autoenc eval does")
    ap.add_argument("--whole", type=Path, help="whole pictures, scored as autoenc eval --whole does")
    ap.add_argument("--components", type=int, default=2048, help="kept components (default: the latent's 2,048 numbers)")
    ap.add_argument("--samples", type=int, default=60000, help="training windows in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    windows = fit_windows(args.fit, args.samples, args.seed)
    pca = PCA(windows, args.components)
    report = {"components": args.components, "windows": len(windows), "variance_kept": round(pca.kept, 5),
              "fit_s": round(time.perf_counter() - started, 1), "crops": score_crops(pca, args.crops)}
    if args.whole is not None:
        report["whole"] = score_whole(pca, args.whole)
    print(f"PCA, {args.components} components fitted on {len(windows):,} windows of {args.fit} "
          f"({pca.kept:.2%} of the variance) in {report['fit_s']} s")
    for name in ("crops", "whole"):
        if name in report:
            r = report[name]
            print(f"  {name:5} {r.get('images', r.get('pictures'))} pictures: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
