"""Rate against distortion (`autoenc eval DATA --rd`): what each way of storing a 64x64 picture costs, and gives back.

Pictures are those `autoenc eval` scores, read and centre-cropped to 64x64 the same way (evaluate.eval_files,
data/cache.py's cached_images). For each picture:

- the autoencoder, once per latent dtype (float32, float16, int8 with its 128 per-channel scales), counted as
  `autoenc encode --dtype D` writes it (latentfile.latent_file_bytes: the very bytes save_latent writes):
    array  the .npy file alone (128-byte header + values): all that a float latent needs to be decoded;
    file   the .npy plus its JSON sidecar: what encode writes, and what an int8 latent needs (its scales);
  each as stored, and with each file compressed on its own, losslessly, by zlib (level 9, a zlib stream) and by
  lzma (preset 9, an .xz container). Scores are of the picture decoded from the dequantized latent, as decode does.
- JPEG and WebP (Pillow, lossy, otherwise default settings: JPEG 4:2:0 as eval's baseline, WebP method 4) at
  each of `qualities`: the whole file's bytes and the decoded picture's scores.

Scores (PSNR, SSIM, MSE on 8-bit pixels) are per picture, then averaged, as in eval; bytes are averaged per
picture; bits per pixel = 8 * mean bytes / (64 * 64). `versus` interpolates each codec's (bpp, PSNR) curve
linearly at each autoencoder point's bpp and gives the autoencoder's PSNR minus the codec's: positive means
the autoencoder is better at equal size; null where the bpp lies outside the curve (never extrapolated).
`same_psnr` is the other way round: the bits per pixel at which each codec first reaches each dtype's PSNR.
"""

import io
import itertools
import lzma
import os
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from autoenc_cli.codec.encoding import decode_latents, encode_images
from autoenc_cli.model.autoencoder import IMAGE_SIZE
from autoenc_cli.measures.evaluate import CHUNK, Scores, decoded_pictures, jpeg_bytes
from autoenc_cli.fileio import write_bytes_atomic
from autoenc_cli.codec.latentfile import DTYPES, dequantize, latent_file_bytes, quantize
from autoenc_cli.model.autoencoder import Autoencoder

QUALITIES = tuple(range(5, 100, 5))  # 5, 10, ..., 95: Pillow advises against JPEG above 95
CODECS = ("jpeg", "webp")
STORAGES = ("stored", "zlib", "lzma")
COUNTS = ("array", "file")
PIXELS = IMAGE_SIZE * IMAGE_SIZE


# ---------------------------------------------------------------- bytes

def lzma_size(data: bytes) -> int:
    """len(lzma.compress(data, preset=9)), 200 times faster: preset 9 sets up a 64 MiB dictionary for every call
    (34 ms). A dictionary at least as long as the data finds the same matches, and the .xz header holds its size
    in one byte either way, so the length is the same (tests/test_ratedistortion.py checks it)."""
    dictionary = max(4096, 1 << (len(data) - 1).bit_length())
    return len(lzma.compress(data, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": dictionary}]))


def lossless_sizes(data: bytes) -> dict[str, int]:
    """Bytes of one file as stored and losslessly compressed (each file alone, as each is its own on disk)."""
    return {"stored": len(data), "zlib": len(zlib.compress(data, 9)), "lzma": lzma_size(data)}


def codec_bytes(codec: str, pixels: np.ndarray, quality: int) -> bytes:
    """64 x 64 x 3 uint8 -> a whole JPEG or lossy WebP file."""
    if codec == "jpeg":
        return jpeg_bytes(pixels, quality)  # eval's own JPEG baseline: the same settings
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="WEBP", quality=quality)
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


# ---------------------------------------------------------------- the measurement

@dataclass
class LatentRate:
    """One latent dtype: its scores, and per picture its bytes by count (array, file) and storage."""
    values: int = 0  # numbers in one latent: 2,048 at channel multiplier 1
    scores: Scores = field(default_factory=Scores)
    sizes: dict = field(default_factory=lambda: {c: {s: [] for s in STORAGES} for c in COUNTS})


@dataclass
class CodecRate:
    quality: int
    scores: Scores = field(default_factory=Scores)
    sizes: list = field(default_factory=list)


@dataclass
class RateDistortion:
    images: int
    skipped: int
    latents: dict  # dtype -> LatentRate
    codecs: dict  # codec -> [CodecRate, one per quality]

    def to_json(self) -> dict:
        latents = {}
        for dtype, rate in self.latents.items():
            row = rate.scores.summary() | {"values_bytes": rate.values * np.dtype(dtype).itemsize}
            for count in COUNTS:
                mean = {s: float(np.mean(rate.sizes[count][s])) for s in STORAGES}
                row[f"{count}_bytes"] = mean
                row[f"{count}_bpp"] = {s: 8 * b / PIXELS for s, b in mean.items()}
            latents[dtype] = row
        codecs = {name: [{"quality": c.quality, "bytes": float(np.mean(c.sizes)),
                          "bpp": 8 * float(np.mean(c.sizes)) / PIXELS} | c.scores.summary() for c in curve]
                  for name, curve in self.codecs.items()}
        summary = {"images": self.images, "skipped": self.skipped, "pixels_per_image": PIXELS,
                   "latents": latents, "codecs": codecs}
        return summary | {"versus": versus(summary), "same_psnr": same_psnr(summary)}


def add_latents(result: RateDistortion, model: Autoencoder, chunk: np.ndarray, made_with: dict | None) -> None:
    """Encode a chunk once; for each dtype count its files' bytes and score what decode would give."""
    latents = np.ascontiguousarray(encode_images(model, chunk))  # as loaded from a file: the same float rounding
    for dtype in DTYPES:
        rate, dequantized = result.latents[dtype], []
        for z in latents:
            npy, sidecar = (lossless_sizes(f) for f in latent_file_bytes(z, (IMAGE_SIZE, IMAGE_SIZE), dtype,
                                                                           weights=made_with))
            for storage in STORAGES:
                rate.sizes["array"][storage].append(npy[storage])
                rate.sizes["file"][storage].append(npy[storage] + sidecar[storage])
            dequantized.append(dequantize(*quantize(z, dtype)))
        rate.values = latents[0].size
        rate.scores.add(chunk, decode_latents(model, np.stack(dequantized)))


def add_codecs(result: RateDistortion, chunk: np.ndarray) -> None:
    for name, curve in result.codecs.items():
        for point in curve:
            files = [codec_bytes(name, p, point.quality) for p in chunk]
            point.sizes += [len(f) for f in files]
            point.scores.add(chunk, np.stack([decode_image(f) for f in files]))


def rate_distortion(data: str | os.PathLike, model: Autoencoder, limit: int | None = None, cache_dir=None,
                    progress=None, made_with: dict | None = None, qualities=QUALITIES) -> RateDistortion:
    """Measure every dtype of the autoencoder and JPEG and WebP at `qualities` on the 64x64 pictures of `data`.

    made_with: the weights' fingerprint, written into each sidecar as encode does (its length counts).
    progress(done, total, label) is called while decoding the images and while measuring."""
    pixels, skipped = decoded_pictures(data, limit, cache_dir, progress)
    result = RateDistortion(len(pixels), skipped, {d: LatentRate() for d in DTYPES},
                            {c: [CodecRate(q) for q in qualities] for c in CODECS})
    for start in range(0, len(pixels), CHUNK):
        chunk = np.array(pixels[start:start + CHUNK])  # a writable copy of the rows in the cache
        add_latents(result, model, chunk, made_with)
        add_codecs(result, chunk)
        if progress is not None:
            progress(start + len(chunk), len(pixels), "rate against distortion")
    return result


# ---------------------------------------------------------------- the comparison

def interpolate(curve: list[dict], bpp: float, key: str = "psnr") -> float | None:
    """A codec's `key` at `bpp`, linear between its two nearest qualities; None outside the curve."""
    points = sorted((c["bpp"], c[key]) for c in curve)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if not xs[0] <= bpp <= xs[-1]:
        return None
    return float(np.interp(bpp, xs, ys))


def versus(summary: dict) -> list[dict]:
    """Every autoencoder point (dtype, count, storage) against each codec at the same bits per pixel."""
    rows = []
    for dtype, latent in summary["latents"].items():
        for count in COUNTS:
            for storage in STORAGES:
                bpp = latent[f"{count}_bpp"][storage]
                row = {"dtype": dtype, "count": count, "storage": storage, "bpp": bpp, "psnr": latent["psnr"]}
                for codec, curve in summary["codecs"].items():
                    at = interpolate(curve, bpp)
                    row[f"{codec}_psnr"] = at
                    row[f"{codec}_db"] = None if at is None else latent["psnr"] - at
                rows.append(row)
    return rows


def bpp_for_psnr(curve: list[dict], psnr: float) -> float | None:
    """The fewest bits per pixel at which a codec's curve reaches `psnr` (linear between qualities); None when its
    lowest quality is already better (it would need extrapolating) or its highest never gets there."""
    points = sorted((c["bpp"], c["psnr"]) for c in curve)
    if points[0][1] >= psnr:
        return None
    for (b0, p0), (b1, p1) in itertools.pairwise(points):
        if p0 < psnr <= p1:
            return b0 + (psnr - p0) / (p1 - p0) * (b1 - b0)
    return None


def same_psnr(summary: dict) -> dict:
    """The other way round: the bits per pixel each codec needs for each dtype's PSNR."""
    return {dtype: {f"{codec}_bpp": bpp_for_psnr(curve, latent["psnr"]) for codec, curve in summary["codecs"].items()}
            for dtype, latent in summary["latents"].items()}


# ---------------------------------------------------------------- the plot

CODEC_COLORS = {"jpeg": "#4c78a8", "webp": "#54a24b"}
CODEC_NAMES = {"jpeg": "JPEG", "webp": "WebP"}
SHORT_DTYPES = {"float32": "f32", "float16": "f16", "int8": "int8"}
# the autoencoder's points: (count, storages of which the smaller is drawn, legend, colour, label offset in pixels)
LATENT_SERIES = (("file", ("stored",), "autoenc files as written", "#f58518", -20),
                 ("file", ("zlib", "lzma"), "autoenc files, compressed", "#e45756", 6),
                 ("array", ("zlib", "lzma"), "autoenc .npy alone, compressed", "#b279a2", 20))


def latent_points(summary: dict, count: str, storages: tuple) -> list[tuple[float, float, str]]:
    """(bpp, PSNR, dtype) of each dtype, at the smallest of `storages` (lzma's .xz container costs ~60 bytes, so
    zlib can win on files this small)."""
    return [(min(latent[f"{count}_bpp"][s] for s in storages), latent["psnr"], dtype)
            for dtype, latent in summary["latents"].items()]


def rd_image(summary: dict, title: str = "") -> Image.Image:
    """PSNR against bits per pixel (log scale): the codecs' curves, and the autoencoder's dtypes as dots (they are
    alternatives, not a curve), each named, as written and compressed."""
    from autoenc_cli.model.architecture import font
    from autoenc_cli.training.plot import panel
    lines = [([(c["bpp"], c["psnr"]) for c in curve], CODEC_COLORS[name],
              f"{CODEC_NAMES[name]} q{curve[0]['quality']}-{curve[-1]['quality']}", True)
             for name, curve in summary["codecs"].items()]
    series = [latent_points(summary, count, storages) for count, storages, *_ in LATENT_SERIES]
    lines += [([p[:2] for p in points], color, name, "only")
              for points, (_, _, name, color, _) in zip(series, LATENT_SERIES)]
    img = Image.new("RGB", (1100, 540), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((20, 10), title, fill="black", font=font(16))
    at = panel(draw, (80, 90, 1060, 480), "PSNR (dB) against size; compressed: the smaller of zlib -9 and lzma -9",
               lines, log_y=False, x_label="bits per pixel (8 x bytes per 64x64 picture / 4,096), log scale", log_x=True)
    for points, (*_, color, offset) in zip(series, LATENT_SERIES):
        for bpp, psnr, dtype in points:
            x, y = at(bpp, psnr)
            text = SHORT_DTYPES.get(dtype, dtype)
            draw.text((x - draw.textlength(text, font=font(11)) / 2, y + offset - 6), text, fill=color, font=font(11))
    return img


def write_rd_png(summary: dict, path: str | os.PathLike, title: str = "") -> None:
    buf = io.BytesIO()
    rd_image(summary, title).save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())
