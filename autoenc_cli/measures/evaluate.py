"""Reconstruction quality of a model against two reference points at the same 2,048 numbers per image.

- bicubic: 64x64 -> 26x26 -> 64x64 with Pillow BICUBIC (26 * 26 * 3 = 2,028 numbers);
- jpeg: Pillow's JPEG (default settings: 4:2:0, standard Huffman tables) at the largest quality
  in 1..95 whose file fits in 1,024 bytes (quality 1 where none fits; those images are counted).

Every metric is on 8-bit pixels, per image, then averaged: PSNR, SSIM (single scale), MSE.
Images are processed in chunks, so memory stays flat however large the folder; the chunks are a job
(data/jobs.py): shared among torchrun's processes and continued when a killed run is run again.
"""

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from autoenc_cli.codec.encoding import comparison_grid, picture_reconstructions, reconstruct, reconstructions, save_png
from autoenc_cli.codec.metrics import mse_per_image, picture_scores, psnr_per_image, ssim_per_image
from autoenc_cli.data.cache import cache_root, cached_images
from autoenc_cli.data.jobs import cache_job_folder, consecutive, job_identity, refinement_steps, run_job, share_sized, start_job
from autoenc_cli.data.listing import find_images
from autoenc_cli.data.reading import image_size, load_square, open_image
from autoenc_cli.data.splits import check_folder, is_tiny_imagenet, no_images, split_dataset
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.model.autoencoder import Autoencoder

BICUBIC_SIDE = 26  # 26 * 26 * 3 = 2,028 <= 2,048 latent numbers
KEPT_FRACTION = 1 / 6  # of a picture's numbers that the latent keeps: 2,048 of 64 * 64 * 3
JPEG_BUDGET = 1024  # bytes per image, whole file
JPEG_QUALITIES = (1, 95)
WORST = 16  # reconstructions shown in the worst-images PNG
CHUNK = 256  # images per chunk (model batch, metrics, baselines)


# ---------------------------------------------------------------- which images

def eval_files(data: str | os.PathLike) -> list[Path]:
    """A Tiny ImageNet root: its val split. Any other folder: all of its images (eval is not training)."""
    root = Path(data)
    check_folder(root)
    files = split_dataset(root).val if is_tiny_imagenet(root) else find_images(root)
    if not files:
        raise no_images(root)
    return files


# ---------------------------------------------------------------- the reference points

def bicubic(pixels: np.ndarray, side: int = BICUBIC_SIDE) -> np.ndarray:
    """N x 64 x 64 x 3 uint8 -> the same, through side x side and back with Pillow BICUBIC."""
    out = np.empty_like(pixels)
    for i, p in enumerate(pixels):
        small = Image.fromarray(p, "RGB").resize((side, side), Image.BICUBIC)
        out[i] = np.asarray(small.resize((p.shape[1], p.shape[0]), Image.BICUBIC))
    return out


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def jpeg_fit(pixels: np.ndarray, budget: int = JPEG_BUDGET) -> tuple[bytes, int]:
    """The JPEG at the largest quality whose size fits `budget` (binary search), or quality 1 if none fits."""
    lo, hi = JPEG_QUALITIES
    best, best_q = None, lo
    while lo <= hi:
        q = (lo + hi) // 2
        data = jpeg_bytes(pixels, q)
        if len(data) <= budget:
            best, best_q, lo = data, q, q + 1
        else:
            hi = q - 1
    return (best, best_q) if best is not None else (jpeg_bytes(pixels, JPEG_QUALITIES[0]), JPEG_QUALITIES[0])


def jpeg(pixels: np.ndarray, budget: int = JPEG_BUDGET) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N images -> (decoded JPEGs, their sizes in bytes, their qualities)."""
    out, sizes, qualities = np.empty_like(pixels), np.empty(len(pixels), np.int64), np.empty(len(pixels), np.int64)
    for i, p in enumerate(pixels):
        data, qualities[i] = jpeg_fit(p, budget)
        sizes[i] = len(data)
        with Image.open(io.BytesIO(data)) as img:
            out[i] = np.asarray(img.convert("RGB"))
    return out, sizes, qualities


# ---------------------------------------------------------------- scores

@dataclass
class Scores:
    """Per-image metrics, appended chunk by chunk."""
    psnr: list = field(default_factory=list)
    ssim: list = field(default_factory=list)
    mse: list = field(default_factory=list)

    def add(self, originals: np.ndarray, recon: np.ndarray) -> None:
        self.psnr += psnr_per_image(originals, recon).tolist()
        self.ssim += ssim_per_image(originals, recon).tolist()
        self.mse += mse_per_image(originals, recon).tolist()

    def add_picture(self, original: np.ndarray, recon: np.ndarray) -> None:
        """One picture of any size (add() holds float64 copies of a whole chunk: too much for a big photo)."""
        mse, psnr, ssim, _ = picture_scores(original, recon)
        self.psnr.append(psnr)
        self.ssim.append(ssim)
        self.mse.append(mse)

    def summary(self) -> dict[str, float]:
        return {"psnr": float(np.mean(self.psnr)), "ssim": float(np.mean(self.ssim)), "mse": float(np.mean(self.mse))}

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The scores as arrays named prefix_psnr, ..., to keep in a job's part."""
        return {f"{prefix}_{k}": np.asarray(getattr(self, k), np.float64) for k in ("psnr", "ssim", "mse")}

    def extend(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        for k in ("psnr", "ssim", "mse"):
            getattr(self, k).extend(arrays[f"{prefix}_{k}"].tolist())


@dataclass
class Evaluation:
    images: int
    skipped: int  # files that could not be decoded
    model: Scores
    bicubic: Scores
    jpeg: Scores
    jpeg_sizes: list
    jpeg_qualities: list
    refine: int = 0  # steps of refinement of each latent (0: the encoder's one pass)
    precision: str = "fp32"  # the network's arithmetic
    one_pass: Scores = field(default_factory=Scores)  # with refine: the encoder's one pass, before the steps
    unreadable: list = field(default_factory=list)  # (file, why) of the skipped

    def to_json(self) -> dict:
        jpeg = self.jpeg.summary() | {
            "bytes": float(np.mean(self.jpeg_sizes)),
            "quality": float(np.mean(self.jpeg_qualities)),
            "over_budget": int(sum(s > JPEG_BUDGET for s in self.jpeg_sizes)),
        }
        return {"images": self.images, "skipped": self.skipped, "refine": self.refine, "precision": self.precision,
                **self.model.summary(), **({"one_pass": self.one_pass.summary()} if self.refine else {}),
                "baselines": {"bicubic": self.bicubic.summary(), "jpeg": jpeg}}


def decoded_pictures(data: str | os.PathLike, limit: int | None = None, cache_dir=None, progress=None) -> tuple[np.ndarray, int]:
    """The 64x64 pictures eval --rd scores (the first `limit` files of eval_files, decoded through the cache) and
    the count of unreadable files skipped."""
    files = limited_files(data, limit)
    decoded = cached_images(files, cache_dir, progress, "decoding images")
    if len(decoded.pixels) == 0:
        raise AutoencError(f"{data}: none of the {counted(len(files), 'image file')} could be decoded")
    return decoded.pixels, decoded.skipped


def limited_files(data: str | os.PathLike, limit: int | None) -> list[Path]:
    if limit is not None and limit < 1:
        raise AutoencError(f"--limit {limit}: must be at least 1")
    return eval_files(data)[:limit]


def square_or_why(path: Path) -> tuple[np.ndarray | None, str]:
    try:
        return load_square(path), ""
    except AutoencError as e:
        return None, str(e)


def evaluate(data: str | os.PathLike, model: Autoencoder, limit: int | None = None, worst_png: str | os.PathLike | None = None,
             cache_dir=None, progress=None, refine: int = 0, weights: dict | None = None, say=None,
             precision: str = "fp32") -> Evaluation | None:
    """Score `model` (its latents refined `refine` steps, as `encode --refine` does, and the one pass before them),
    bicubic and JPEG on the images of `data`, centre-cropped to 64x64; write the worst reconstructions to `worst_png`.

    A job (data/jobs.py) kept under the cache folder: shared among torchrun's processes (rank 0 returns the
    result, the others None), continued when run again. progress(done, total) on rank 0."""
    files = limited_files(data, limit)

    def plan(processes: int) -> list[list[int]]:
        return consecutive(len(files), share_sized(len(files), processes, CHUNK, 2) if refine else CHUNK)
    identity = job_identity("eval", files, weights, {"--refine": refine, "--limit": limit, "--precision": precision})
    job = start_job(cache_job_folder(cache_root(cache_dir), "eval", [Path(data)]), identity, plan, [1] * len(files), say)

    def do_batch(items: list[int], within):
        read = [square_or_why(files[i]) for i in items]
        good = [i for i, (a, _) in zip(items, read) if a is not None]
        record = {"good": good, "skipped": [[i, why] for i, (a, why) in zip(items, read) if a is None]}
        if not good:
            return record, {}
        chunk = np.stack([a for a, _ in read if a is not None])
        scores = {name: Scores() for name in ("model", "one_pass", "bicubic", "jpeg")}
        *one_pass, recon = reconstructions(model, chunk, refine, refinement_steps(within) if refine else None, precision)
        scores["model"].add(chunk, recon)
        for before in one_pass:
            scores["one_pass"].add(chunk, before)
        scores["bicubic"].add(chunk, bicubic(chunk))
        recon, sizes, qualities = jpeg(chunk)
        scores["jpeg"].add(chunk, recon)
        arrays = {k: v for name, s in scores.items() for k, v in s.arrays(name).items()}
        return record, arrays | {"jpeg_bytes": sizes, "jpeg_quality": qualities}

    run_job(job, do_batch, progress, "image")
    if job.rank != 0:
        return None
    result = Evaluation(0, 0, Scores(), Scores(), Scores(), [], [], refine, precision)
    good: list[int] = []
    for part in job.parts():
        good += part.record["good"]
        result.unreadable += [(files[i], why) for i, why in part.record["skipped"]]
        if part.record["good"]:
            for name in ("model", "one_pass", "bicubic", "jpeg") if refine else ("model", "bicubic", "jpeg"):
                getattr(result, name).extend(part.arrays, name)
            result.jpeg_sizes += part.arrays["jpeg_bytes"].tolist()
            result.jpeg_qualities += part.arrays["jpeg_quality"].tolist()
    if not good:
        raise AutoencError(f"{data}: none of the {counted(len(files), 'image file')} could be decoded")
    result.images, result.skipped = len(good), len(result.unreadable)
    if worst_png is not None:
        worst = np.argsort(result.model.psnr, kind="stable")[:WORST]
        save_png(worst_grid(model, np.stack([load_square(files[good[i]]) for i in worst]), refine, precision), worst_png)
    job.close()
    return result


def worst_grid(model: Autoencoder, worst: np.ndarray, refine: int = 0, precision: str = "fp32") -> np.ndarray:
    """The worst images (worst first): a row of originals above a row of reconstructions."""
    return comparison_grid(worst, reconstruct(model, worst, refine, precision=precision))


# ---------------------------------------------------------------- whole pictures at their own size

def bicubic_same_numbers(pixels: np.ndarray, kept: float = KEPT_FRACTION) -> np.ndarray:
    """H x W x 3 uint8 -> each side scaled by sqrt(kept) and back with Pillow BICUBIC: `kept` of the numbers remain."""
    h, w = pixels.shape[:2]
    small = (max(1, round(w * kept ** 0.5)), max(1, round(h * kept ** 0.5)))
    img = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    return np.asarray(img.resize(small, Image.BICUBIC).resize((w, h), Image.BICUBIC))


@dataclass
class WholeEvaluation:
    """Per-picture scores at each picture's own size: the model's one-pass reconstruction and bicubic."""
    files: list
    skipped: int
    model: Scores
    bicubic: Scores
    refine: int = 0  # steps of refinement of each latent (0: the encoder's one pass)
    precision: str = "fp32"  # the network's arithmetic
    one_pass: Scores = field(default_factory=Scores)  # with refine: the encoder's one pass, before the steps
    unreadable: list = field(default_factory=list)  # (file, why) of the skipped

    def to_json(self) -> dict:
        gaps = np.array(self.model.psnr) - np.array(self.bicubic.psnr)
        worst = int(np.argmin(gaps))
        one_pass = self.one_pass.psnr or [None] * len(self.files)
        return {"pictures": len(self.files), "skipped": self.skipped, "refine": self.refine, "precision": self.precision,
                **self.model.summary(), **({"one_pass": self.one_pass.summary()} if self.refine else {}),
                "baselines": {"bicubic": self.bicubic.summary()},
                "vs_bicubic_db": {"mean": float(gaps.mean()), "worst": float(gaps[worst]),
                                  "worst_file": str(self.files[worst]), "below_3db": int((gaps < -3).sum())},
                "per_picture": [{"file": str(f), "psnr": m, "bicubic_psnr": b} | ({"one_pass_psnr": o} if self.refine else {})
                                for f, m, b, o in zip(self.files, self.model.psnr, self.bicubic.psnr, one_pass)]}


WHOLE_BATCH = 64  # at most, pictures of eval --whole (and score) per saved batch


def whole_picture(path: Path) -> tuple[np.ndarray | None, str]:
    """A picture at its own size for eval --whole, or None and why not (unreadable, or too small for SSIM)."""
    try:
        pixels = np.asarray(open_image(path), dtype=np.uint8)
    except AutoencError as e:
        return None, str(e)
    if min(pixels.shape[:2]) < 11:  # SSIM's window
        return None, f"{path}: {pixels.shape[1]}x{pixels.shape[0]} is too small to score (SSIM needs 11x11)"
    return pixels, ""


def evaluate_whole(data: str | os.PathLike, model: Autoencoder, limit: int | None = None, progress=None,
                   max_memory_mb: float | None = None, refine: int = 0, cache_dir=None, weights: dict | None = None,
                   say=None, precision: str = "fp32") -> WholeEvaluation | None:
    """Score every picture of `data` at its own size (encoded, refined `refine` steps, and decoded as encode and
    decode do, in tiles that fit max_memory_mb; with refine, the one pass too) against bicubic at 1/6 of the
    numbers. A job, as evaluate()."""
    files = limited_files(data, limit)
    sizes = [image_size(p) for p in files]
    identity = job_identity("eval --whole", files, weights, {"--refine": refine, "--limit": limit,
                                                             "--max-memory": max_memory_mb, "--precision": precision})
    job = start_job(cache_job_folder(cache_root(cache_dir), "eval --whole", [Path(data)]), identity,
                    lambda processes: consecutive(len(files), share_sized(len(files), processes, WHOLE_BATCH)),
                    [w * h if (w, h) != (0, 0) else 1 for w, h in (s or (0, 0) for s in sizes)], say)

    def do_batch(items: list[int], within):
        scores, good, skipped = {"model": Scores(), "one_pass": Scores(), "bicubic": Scores()}, [], []
        for k, i in enumerate(items):
            pixels, why = whole_picture(files[i])
            if pixels is None:
                skipped.append([i, why])
                continue
            good.append(i)
            steps = refinement_steps(within, k / len(items), 1 / len(items)) if refine else None
            *one_pass, recon = picture_reconstructions(model, pixels, max_memory_mb, precision, refine, steps)
            scores["model"].add_picture(pixels, recon)
            for before in one_pass:
                scores["one_pass"].add_picture(pixels, before)
            scores["bicubic"].add_picture(pixels, bicubic_same_numbers(pixels))
            within((k + 1) / len(items))
        return {"good": good, "skipped": skipped}, {k: v for n, s in scores.items() for k, v in s.arrays(n).items()}

    run_job(job, do_batch, progress, "picture")
    if job.rank != 0:
        return None
    result = WholeEvaluation([], 0, Scores(), Scores(), refine, precision)
    for part in job.parts():
        result.files += [files[i] for i in part.record["good"]]
        result.unreadable += [(files[i], why) for i, why in part.record["skipped"]]
        if part.record["good"]:
            result.model.extend(part.arrays, "model")
            result.bicubic.extend(part.arrays, "bicubic")
            if refine:
                result.one_pass.extend(part.arrays, "one_pass")
    result.skipped = len(result.unreadable)
    if not result.files:
        raise AutoencError(f"{data}: none of the {counted(len(files), 'image file')} could be decoded at 11x11 or more")
    job.close()
    return result
