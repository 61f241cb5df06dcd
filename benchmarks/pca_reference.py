"""The linear reference: PCA with as many components as the latent has numbers, scored as `autoenc eval` scores.

    python benchmarks/pca_reference.py FIT_PHOTOS --crops CROPS [--whole PHOTOS] [--components 2048] \
        [--samples 60000] [--seed 0] [--json out.json]

PCA keeping 2,048 of a 64x64x3 picture's 12,288 numbers (the latent's 4x4x128) is the best linear code of that
size: the number the autoencoder has to beat to be worth its nonlinearity. It is fitted on `--samples` random
64x64 windows of FIT_PHOTOS, shared out evenly, half at the photo's scale and half at half scale (2x2 box
average), as training sees photos at zooms 1 and 2 (a 64x64 file is one window, as it is; a side under 64 is
first scaled up to 64, as training does): the mean, the covariance (float32 products of chunks summed in
float64), then torch.linalg.eigh in float64 (under 12,288 windows: of the N x N Gram matrix, same components).
Scored, on 8-bit pixels (reconstructions clamped and rounded, as the network's are), PSNR and SSIM per picture,
then averaged, as `autoenc eval CROPS` scores 64x64 crops and `autoenc eval PHOTOS --whole` whole pictures;
a whole picture is coded as 64x64 tiles (edges padded by repeating the last row and column, then cropped
back). "Variance kept": the share of the fit windows' variance in the kept components. Fit on other photos
than the scored ones, or the reference is flattered.
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.data.listing import find_images  # noqa: E402
from autoenc_cli.data.reading import open_image
from autoenc_cli.errors import AutoencError  # noqa: E402
from autoenc_cli.measures.evaluate import CHUNK as EVAL_CHUNK  # noqa: E402
from autoenc_cli.measures.evaluate import Scores, decoded_pictures, eval_files  # noqa: E402
from autoenc_cli.model.autoencoder import IMAGE_SIZE as SIDE  # noqa: E402

DIMS = SIDE * SIDE * 3
CHUNK = 2048  # windows or tiles per matrix product: 100 MB of float32


def picture_windows(img: Image.Image, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random 64x64 windows of one picture, every other one from its half-scale copy (if 64 or more)."""
    if min(img.size) < SIDE:  # as training's pyramid does: the short side scaled up to 64
        scale = SIDE / min(img.size)
        img = img.resize((max(SIDE, round(img.width * scale)), max(SIDE, round(img.height * scale))), Image.BICUBIC)
    native = np.asarray(img, dtype=np.uint8)
    if native.shape[:2] == (SIDE, SIDE):
        return native[None]
    half = np.asarray(img.reduce(2), dtype=np.uint8)  # each 2x2 block averaged: a box filter
    levels = (native, half) if min(half.shape[:2]) >= SIDE else (native, native)
    windows = np.empty((count, SIDE, SIDE, 3), np.uint8)
    for i in range(count):
        level = levels[i % 2]
        top, left = rng.integers(0, level.shape[0] - SIDE + 1), rng.integers(0, level.shape[1] - SIDE + 1)
        windows[i] = level[top:top + SIDE, left:left + SIDE]
    return windows


def fit_windows(folder: Path, samples: int, seed: int) -> tuple[np.ndarray, int]:
    """N x 12,288 uint8 windows of the pictures in `folder` (`samples` in all, shared out evenly) and the
    count of pictures they came from (files that cannot be decoded are left out)."""
    rng, files = np.random.default_rng(seed), find_images(folder)
    parts = []
    for i, path in enumerate(files):
        try:
            img = open_image(path)
        except AutoencError:
            continue
        share = samples // len(files) + (i < samples % len(files))
        parts.append(picture_windows(img, max(share, 1), rng).reshape(-1, DIMS))
    if not parts:
        raise SystemExit(f"{folder}: no image could be decoded (of {len(files)})")
    return np.concatenate(parts), len(parts)


@dataclass
class PCA:
    mean: torch.Tensor  # D float32, pixels in [0, 1]
    basis: torch.Tensor  # D x k float32, orthonormal columns, largest variance first
    variance_kept: float

    def reconstruct(self, pixels: np.ndarray) -> np.ndarray:
        """N x ... uint8 (N x D numbers) -> the same through the k numbers of each, clamped and rounded to 8 bits."""
        x = torch.from_numpy(np.ascontiguousarray(pixels).reshape(len(pixels), -1)).float() / 255 - self.mean
        y = (x @ self.basis) @ self.basis.T + self.mean
        return (y * 255).round().clamp(0, 255).to(torch.uint8).numpy().reshape(pixels.shape)


def centered_chunks(windows: np.ndarray, mean: torch.Tensor):
    for start in range(0, len(windows), CHUNK):
        yield torch.from_numpy(windows[start:start + CHUNK]).float() / 255 - mean


def fit_pca(windows: np.ndarray, components: int) -> PCA:
    """The top `components` principal axes of N x D uint8 windows (fewer if the windows span fewer)."""
    n, dims = windows.shape
    mean = (sum(torch.from_numpy(windows[s:s + CHUNK]).double().sum(0) for s in range(0, n, CHUNK)) / (255 * n)).float()
    if n > dims:  # D x D covariance: float32 products of chunks, summed in float64
        covariance = torch.zeros(dims, dims, dtype=torch.float64)
        for x in centered_chunks(windows, mean):
            covariance += (x.T @ x).double()
        values, vectors = torch.linalg.eigh(covariance.div_(n))
    else:  # N x N Gram matrix: the same nonzero eigenvalues; its eigenvectors map to the covariance's
        x = torch.cat(list(centered_chunks(windows, mean))).double()
        values, vectors = torch.linalg.eigh(x @ x.T / n)
        vectors = x.T @ vectors
    values, vectors = values.flip(0).clamp_min(0), vectors.flip(1)  # largest first
    k = min(components, int((values > values[0] * 1e-9).sum()))  # no more than the windows' rank
    basis = torch.nn.functional.normalize(vectors[:, :k], dim=0).float().contiguous()
    return PCA(mean, basis, float(values[:k].sum() / values.sum().clamp_min(1e-30)))


def reconstruct_picture(pca: PCA, pixels: np.ndarray) -> np.ndarray:
    """A whole H x W x 3 uint8 picture, tile by tile (edges padded to a multiple of 64, then cropped back)."""
    h, w = pixels.shape[:2]
    padded = np.pad(pixels, ((0, -h % SIDE), (0, -w % SIDE), (0, 0)), mode="edge")
    rows, cols = padded.shape[0] // SIDE, padded.shape[1] // SIDE
    tiles = padded.reshape(rows, SIDE, cols, SIDE, 3).swapaxes(1, 2).reshape(-1, SIDE, SIDE, 3)
    for start in range(0, len(tiles), CHUNK):
        tiles[start:start + CHUNK] = pca.reconstruct(tiles[start:start + CHUNK])
    return tiles.reshape(rows, cols, SIDE, SIDE, 3).swapaxes(1, 2).reshape(padded.shape)[:h, :w]


def score_crops(pca: PCA, folder: Path) -> dict:
    """As `autoenc eval` scores 64x64 pictures (evaluate.evaluate): decoded through its cache, in its chunks."""
    pixels, skipped = decoded_pictures(folder)
    scores = Scores()
    for start in range(0, len(pixels), EVAL_CHUNK):
        chunk = np.array(pixels[start:start + EVAL_CHUNK])
        scores.add(chunk, pca.reconstruct(chunk))
    return {"pictures": len(pixels), "skipped": skipped} | scores.summary()


def score_whole(pca: PCA, folder: Path) -> dict:
    """As `autoenc eval --whole` scores pictures at their own size (evaluate.evaluate_whole)."""
    scores, skipped = Scores(), 0
    for path in eval_files(folder):
        try:
            pixels = np.asarray(open_image(path), dtype=np.uint8)
        except AutoencError:
            pixels = None
        if pixels is None or min(pixels.shape[:2]) < 11:  # SSIM's window, as eval --whole
            skipped += 1
            continue
        scores.add_picture(pixels, reconstruct_picture(pca, pixels))
    return {"pictures": len(scores.psnr), "skipped": skipped} | scores.summary()


def print_table(report: dict) -> None:
    print(f"PCA, {report['components']:,} components fitted on {report['windows']:,} windows of "
          f"{report['fit_pictures']} pictures: {report['variance_kept']:.3%} of their variance kept")
    print(f"  {'scored':<8}{'pictures':>9}{'PSNR dB':>9}{'SSIM':>8}{'seconds':>9}")
    for name in ("crops", "whole"):
        if name in report:
            r = report[name]
            print(f"  {name:<8}{r['pictures']:>9}{r['psnr']:>9.2f}{r['ssim']:>8.4f}{report['seconds'][name]:>9.1f}")
    print(f"  fit {report['seconds']['fit']:.1f} s, all {report['seconds']['total']:.1f} s")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fit", type=Path, help="pictures to fit on (not the scored ones)")
    ap.add_argument("--crops", type=Path, required=True, help="64x64 pictures, scored as autoenc eval does")
    ap.add_argument("--whole", type=Path, help="pictures scored at their own size, as autoenc eval --whole does")
    ap.add_argument("--components", type=int, default=2048, help="kept components (default: the latent's 2,048)")
    ap.add_argument("--samples", type=int, default=60000, help="64x64 windows to fit on, in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args(argv)
    clock = time.perf_counter()
    windows, pictures = fit_windows(args.fit, args.samples, args.seed)
    pca, fitted = fit_pca(windows, args.components), len(windows)
    del windows
    seconds = {"fit": time.perf_counter() - clock}
    report = {"components": pca.basis.shape[1], "samples": args.samples, "windows": fitted,
              "fit_pictures": pictures, "seed": args.seed, "variance_kept": pca.variance_kept}
    for name, folder, score in (("crops", args.crops, score_crops), ("whole", args.whole, score_whole)):
        if folder is not None:
            start = time.perf_counter()
            report[name] = score(pca, folder)
            seconds[name] = time.perf_counter() - start
    report["seconds"] = {k: round(v, 1) for k, v in seconds.items()} | {"total": round(time.perf_counter() - clock, 1)}
    print_table(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
