"""Anomaly scores: `autoenc score DATA` ranks pictures by how badly the model reconstructs them.

An autoencoder trained on one kind of picture reconstructs that kind well and other things worse, so the
reconstruction error says which pictures (and which places in them) do not look like the training set.
Every picture is encoded and decoded at its own size, as `encode` + `decode` do (in tiles: memory stays
bounded), and gets:

    mse, psnr   over the whole picture (8-bit levels)
    ssim        over the whole picture (metrics.ssim_picture, in bands of rows)
    peak        the mean squared error of the worst REGION x REGION window (stepped by half of it): a small
                defect in a large picture moves the whole-picture MSE little and this a lot

`by` picks the measure that ranks (worst first) and that a reference set's threshold applies to; its error
is the measure itself, or 1 - ssim. With reference pictures (ones known to be normal) the threshold is a
percentile of their errors, and each picture is over it or not.
"""

import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from autoenc_cli.codec.encoding import read_picture, reconstruct_picture
from autoenc_cli.data.cache import cache_root
from autoenc_cli.data.jobs import cache_job_folder, consecutive, job_identity, run_job, share_sized, start_job
from autoenc_cli.data.reading import image_size
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.fileio import short_name, shown, what_is
from autoenc_cli.codec.metrics import picture_scores

MEASURES = ("peak", "mse", "ssim")
DEFAULT_MEASURE = "peak"
REGION = 32  # pixels on a side of the windows `peak` looks at: half a training picture
MIN_SIDE = 11  # SSIM's window
DEFAULT_PERCENTILE = 99.0
BATCH = 64  # at most, pictures per saved batch of the job
HEATMAP_FILE = re.compile(r"\d{3}_.*\.png|\.\d{3}_.*\.png\..*\.tmp")  # a heatmap, or one a killed run left half-written


@dataclass
class PictureScore:
    file: str
    width: int
    height: int
    mse: float
    psnr: float
    ssim: float
    peak: float
    error: float = 0.0  # the ranking measure as an error (larger is worse)
    over: bool | None = None  # against a reference threshold, when there is one


@dataclass
class Scored:
    scores: list[PictureScore]  # worst first
    skipped: list[str]
    by: str
    threshold: float | None = None
    percentile: float | None = None
    reference_count: int = 0
    unreadable: list = field(default_factory=list)  # (file, why) of the skipped

    @property
    def over_count(self) -> int:
        return sum(bool(s.over) for s in self.scores)

    def to_json(self) -> dict:
        return {"pictures": len(self.scores), "skipped": self.skipped, "by": self.by, "region": REGION,
                "threshold": None if self.threshold is None else {
                    "value": self.threshold, "percentile": self.percentile, "reference_pictures": self.reference_count,
                    "over": self.over_count},
                "scores": [asdict(s) for s in self.scores]}


class Unscorable(AutoencError):
    """A file that is not a picture, or one too small to score."""


def peak_error(error: torch.Tensor, region: int = REGION) -> float:
    """The mean of the worst region x region window of an H x W error map, windows stepped by region / 2
    (the whole map's mean when it is smaller than a window)."""
    if min(error.shape) < region:
        return error.mean().item()
    return F.avg_pool2d(error[None, None], region, stride=region // 2).max().item()


def measure_error(score: PictureScore, by: str) -> float:
    return 1.0 - score.ssim if by == "ssim" else getattr(score, by)


def score_picture(model, path: Path, max_memory_mb: float | None = None) -> tuple[PictureScore, np.ndarray]:
    """One picture's scores and its reconstruction (for heatmaps)."""
    try:
        pixels = read_picture(path)
    except AutoencError as e:
        raise Unscorable(str(e)) from None
    h, w = pixels.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise Unscorable(f"{path}: {w}x{h} is too small to score (SSIM needs {MIN_SIDE}x{MIN_SIDE})")
    rebuilt = reconstruct_picture(model, pixels, max_memory_mb)
    mse, psnr, ssim, error = picture_scores(pixels, rebuilt)
    return PictureScore(str(path), w, h, mse, psnr, ssim, peak_error(error)), rebuilt


def threshold_at(errors: list[float], percentile: float) -> float:
    if not 0 <= percentile <= 100:
        raise AutoencError(f"--percentile {percentile}: must be between 0 and 100")
    return float(np.percentile(np.asarray(errors, dtype=np.float64), percentile))


def score(model, files: list[Path], by: str = DEFAULT_MEASURE, reference: list[Path] | None = None,
          percentile: float = DEFAULT_PERCENTILE, max_memory_mb: float | None = None, progress=None,
          weights: dict | None = None, job_folder: Path | None = None, say=None) -> Scored | None:
    """Score `files`, worst first by `by`; with `reference` (normal pictures), mark each over or under the
    `percentile` of the reference errors. The pictures (the reference's first) are a job (data/jobs.py) kept in
    `job_folder` (default: under the cache folder): shared among torchrun's processes (rank 0 returns the result,
    the others None) and continued when a killed run is run again. progress(done, total) on rank 0."""
    if by not in MEASURES:
        raise AutoencError(f"--by {by}: must be one of {', '.join(MEASURES)}")
    if not files:
        raise AutoencError("no pictures to score")
    reference = [Path(p) for p in reference or []]
    pictures = reference + [Path(p) for p in files]
    sizes = [image_size(p) for p in pictures]
    identity = job_identity("score", pictures, weights, {"--max-memory": max_memory_mb, "references": len(reference)})
    folder = job_folder or cache_job_folder(cache_root(), "score", pictures)
    job = start_job(folder, identity, lambda processes: consecutive(len(pictures), share_sized(len(pictures), processes, BATCH)),
                    [s[0] * s[1] if s else 1 for s in sizes], say)

    def do_batch(items: list[int], within):
        scored, skipped = [], []
        for k, i in enumerate(items):
            try:
                scored.append([i, asdict(score_picture(model, pictures[i], max_memory_mb)[0])])
            except Unscorable as e:  # skipped and listed; any other error (a --max-memory too small) ends the command
                skipped.append([i, str(e)])
            within((k + 1) / len(items))
        return {"scored": scored, "skipped": skipped}, None

    run_job(job, do_batch, progress)
    if job.rank != 0:
        return None
    scores, unreadable = [], []
    for part in job.parts(arrays=False):
        scores += [(i, PictureScore(**fields)) for i, fields in part.record["scored"]]
        unreadable += [(pictures[i], why) for i, why in part.record["skipped"]]
    result = ranked([s for i, s in scores if i >= len(reference)], [s for i, s in scores if i < len(reference)],
                    by, percentile if reference else None, len(files), len(reference))
    result.skipped, result.unreadable = [str(p) for p, _ in unreadable], unreadable
    job.close()
    return result


def ranked(scores: list[PictureScore], reference: list[PictureScore], by: str, percentile: float | None, count: int,
           reference_count: int) -> Scored:
    """The scores worst first, each over or under the reference's percentile when there is a reference."""
    threshold = None
    if percentile is not None:
        if not reference:
            raise AutoencError(f"none of the {counted(reference_count, 'reference file')} could be scored")
        threshold = threshold_at([measure_error(s, by) for s in reference], percentile)
    if not scores:
        raise AutoencError(f"none of the {counted(count, 'file')} could be scored (unreadable, or under {MIN_SIDE}x{MIN_SIDE})")
    for s in scores:
        s.error = measure_error(s, by)
        s.over = None if threshold is None else s.error > threshold
    scores.sort(key=lambda s: s.error, reverse=True)
    return Scored(scores, [], by, threshold, percentile, len(reference))


def to_csv(result: Scored) -> str:
    columns = ["rank", "file", "width", "height", "mse", "psnr", "ssim", "peak"] + (["over"] if result.threshold is not None else [])
    lines = [",".join(columns)]
    for rank, s in enumerate(result.scores, 1):
        row = [str(rank), csv_field(s.file), str(s.width), str(s.height), f"{s.mse:.3f}", f"{s.psnr:.3f}", f"{s.ssim:.5f}",
               f"{s.peak:.3f}"] + (["yes" if s.over else "no"] if result.threshold is not None else [])
        lines.append(",".join(row))
    return "\n".join(lines) + "\n"


def csv_field(text: str) -> str:
    """A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180)."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def heatmap_name(rank: int, path: str | os.PathLike) -> str:
    return f"{rank:03d}_{short_name(Path(path).stem)}.png"


def earlier_heatmaps(folder: Path) -> list[Path]:
    """The files of an earlier set of heatmaps in `folder` (NNN_NAME.png, regular files), or AutoencError when it
    holds anything else (it may be the user's) or is not a folder. Called before the scoring, and again to clear."""
    if not (folder.exists() or folder.is_symlink()):
        return []
    if not folder.is_dir():
        raise AutoencError(f"{folder}: is {what_is(folder)}; --heatmaps takes a folder")
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        raise AutoencError(f"{folder}: cannot read folder ({e.strerror or e})") from None
    foreign = [p for p in entries if not (HEATMAP_FILE.fullmatch(p.name) and stat.S_ISREG(os.lstat(p).st_mode))]
    if foreign:
        raise AutoencError(f"{folder}: holds {foreign[0].name} and {counted(len(foreign) - 1, 'other file')} that are not heatmaps; "
                           "give a new or empty folder")
    return entries


def clear_heatmaps(folder: Path) -> None:
    """Make `folder` ready for a new set of heatmaps: created if missing; a previous set (NNN_NAME.png files) is
    removed, so that no stale rank is left; a folder holding anything else is refused."""
    from autoenc_cli.fileio import ensure_dir
    entries = earlier_heatmaps(folder)
    ensure_dir(folder)
    for p in entries:
        p.unlink()


def write_heatmaps(model, result: Scored, folder: Path, count: int, max_memory_mb: float | None = None,
                   progress=None) -> list[Path]:
    """Heatmap PNGs of the `count` worst pictures into `folder`, named by rank (001_NAME.png is the worst)."""
    from autoenc_cli.measures.heatmap import write_heatmap
    clear_heatmaps(folder)
    written = []
    worst = result.scores[:count]
    for rank, s in enumerate(worst, 1):
        pixels = read_picture(s.file)
        verdict = "" if s.over is None else ("  OVER the threshold" if s.over else "  under the threshold")
        title = (f"#{rank} {shown(Path(s.file).name)}  {s.width}x{s.height}  PSNR {s.psnr:.2f} dB  SSIM {s.ssim:.3f}  "
                 f"worst {REGION}px region: MSE {s.peak:.0f}{verdict}")
        path = folder / heatmap_name(rank, s.file)
        write_heatmap(path, pixels, reconstruct_picture(model, pixels, max_memory_mb), title)
        written.append(path)
        if progress is not None:
            progress(rank, len(worst), "drawing heatmaps")
    return written
