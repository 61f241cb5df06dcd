"""Training curves from log.csv, drawn with Pillow: loss (log scale) and validation PSNR against steps.

Why not matplotlib: it and the packages it brings are about 20 MB of wheels beyond numpy and Pillow, and
`import matplotlib.pyplot` took 0.64 s here (python -X importtime, 2026-11-26), for two line charts."""

import io
import math
import os
from pathlib import Path

from PIL import Image, ImageDraw

from autoenc_cli.model.architecture import font
from autoenc_cli.training.checkpoint import LOG_FILE, read_log
from autoenc_cli.codec.inputs import named_as
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import check_writable, resolved, shown, write_bytes_atomic

CURVE_FILE = "curve.png"
TRAIN_COLOR, VAL_COLOR, GRID = "#4c78a8", "#f58518", "#e6e6e6"


DRAWN_LIMIT = 1e100  # values beyond it are drawn at it: the axes' arithmetic stays finite


def clamp(v: float) -> float:
    return max(-DRAWN_LIMIT, min(DRAWN_LIMIT, v))


def series(rows: list[dict], column: str) -> list[tuple[float, float]]:
    """(step, value) for the rows where `column` holds a finite number."""
    points = []
    for r in rows:
        try:
            step, value = float(r["step"]), float(r.get(column) or "nan")
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(step) and math.isfinite(value):  # drawn within +-DRAWN_LIMIT: far off the chart either way
            points.append((clamp(step), clamp(value)))
    return points


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round numbers covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    mag = 10 ** math.floor(math.log10((hi - lo) / count))
    step = min((m * mag for m in (1, 2, 5, 10)), key=lambda s: abs((hi - lo) / s - count))
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 times powers of ten inside [lo, hi] (at least the two ends when none fall inside)."""
    ticks = [m * 10**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
    inside = [t for t in ticks if lo <= t <= hi]
    return inside if len(inside) >= 2 else [lo, hi]


def label(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def x_axis(xs: list[float], log: bool):
    """((low, high), scale, ticks) of an x axis holding xs."""
    x0, x1 = min(xs), max(xs)
    if log:  # a margin of 10% on each side, so that the end dots are not cut by the frame
        return (x0 / 1.1, x1 * 1.1), math.log10, log_ticks(x0 / 1.1, x1 * 1.1)
    if x1 <= x0:  # one point (one validation so far): the axis from step 0 to a little past it
        x0, x1 = 0, max(1.0, x1 * 1.1)
    return (x0, x1), float, nice_ticks(x0, x1)


def y_axis(ys: list[float], log: bool):
    """((low, high), scale, ticks) of a y axis holding ys, with room above and below. A log axis shows the
    positive values; with none (losses of exactly 0) the axis is linear."""
    positive = [y for y in ys if y > 0]
    if log and positive:
        y0, y1 = min(positive) / 1.2, max(positive) * 1.2
        return (y0, y1), math.log10, log_ticks(y0, y1)
    lo, hi = min(ys), max(ys)
    pad = max(0.5, 0.05 * (hi - lo), 1e-6 * max(abs(lo), abs(hi)))  # the last: 0.5 is lost in rounding at 1e17
    return (lo - pad, hi + pad), float, nice_ticks(lo - pad, hi + pad)


def panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], title: str, lines: list, log_y: bool,
          x_label: str = "step", log_x: bool = False):
    """Axes in `box` (left, top, right, bottom) with `lines` = [(points, color, name, dots)]; returns the mapping
    (x, y) -> pixel, to annotate points.

    dots: True draws a dot at each point too; "only" draws the dots without joining them (points that are
    alternatives, not a curve). log_x: a log-scale x axis (positive values), for values that span decades."""
    left, top, right, bottom = box
    small, big = font(12), font(15)
    draw.text((left, top - 34), title, fill="black", font=big)
    pts = [p for points, *_ in lines for p in points]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    (x0, x1), fx, xticks = x_axis(xs, log_x)
    (y0, y1), f, yticks = y_axis(ys, log_y)

    def at(x, y):
        return (left + (fx(x) - fx(x0)) / (fx(x1) - fx(x0)) * (right - left),
                bottom - (f(max(y, y0)) - f(y0)) / (f(y1) - f(y0)) * (bottom - top))

    for t in yticks:
        _, yy = at(x0, t)
        draw.line([left, yy, right, yy], fill=GRID)
        text = label(t)
        draw.text((left - 6 - draw.textlength(text, font=small), yy - 7), text, fill="#333333", font=small)
    for t in xticks:
        xx, _ = at(t, y0)
        draw.line([xx, top, xx, bottom], fill=GRID)
        text = label(t)
        draw.text((xx - draw.textlength(text, font=small) / 2, bottom + 6), text, fill="#333333", font=small)
    draw.rectangle([left, top, right, bottom], outline="#888888")
    draw.text(((left + right - draw.textlength(x_label, font=small)) / 2, bottom + 24), x_label, fill="#333333", font=small)
    legend_x = right - 10
    for points, color, name, dots in reversed(lines):
        if not points:
            continue
        xy = [at(*p) for p in points]
        if len(xy) > 1 and dots != "only":
            draw.line(xy, fill=color, width=2)
        if dots or len(xy) == 1:
            for x, y in xy:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        legend_x -= draw.textlength(name, font=small) + 26  # above the axes, right-aligned: never over the data
        draw.rectangle([legend_x, top - 16, legend_x + 12, top - 4], fill=color)
        draw.text((legend_x + 16, top - 17), name, fill="black", font=small)
    return at


def curve_image(rows: list[dict], title: str = "") -> Image.Image:
    """A 1000x440 picture: training and validation loss (log scale), and validation PSNR."""
    train, val_loss, psnr = series(rows, "train_loss"), series(rows, "val_loss"), series(rows, "val_psnr")
    if not (train or val_loss):
        raise AutoencError("the log has no loss values to plot yet")
    img = Image.new("RGB", (1000, 440), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((20, 10), shown(title), fill="black", font=font(16))
    panel(draw, (80, 90, 480, 380), "loss (mean squared error, network units)",
          [(train, TRAIN_COLOR, "train", False), (val_loss, VAL_COLOR, "validation", True)], log_y=True)
    if psnr:
        last = psnr[-1][1]
        panel(draw, (580, 90, 980, 380), f"validation PSNR (dB), last {last:.2f}",
              [(psnr, VAL_COLOR, "validation", True)], log_y=False)
    else:
        draw.text((580, 220), "no validation PSNR yet (it is measured at the end of each epoch)", fill="#555555", font=font(12))
    return img


def write_curve(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """The curve of `rows` as a PNG at `path` (training draws it at each save, `autoenc plot` on demand)."""
    buf = io.BytesIO()
    curve_image(rows, title).save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())
    return Path(path)


def plot_log(source: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """A run folder or its log.csv -> the curve PNG (default: curve.png beside the log)."""
    source = Path(source)
    log = source / LOG_FILE if source.is_dir() else source
    if not (log.exists() or log.is_symlink()):
        raise AutoencError(f"{log}: no such log (give a run folder made by autoenc train, or its log.csv)")
    rows = read_log(log)
    if not rows or "step" not in rows[0]:
        raise AutoencError(f"{log}: not an autoenc log.csv (no step column or no rows)")
    target = Path(output) if output else log.parent / CURVE_FILE
    if resolved(target) == resolved(log):
        raise AutoencError(f"{target}: is the log itself; refusing to overwrite it (give another -o)")
    check_writable(target)
    named_as(target, ".png", "the curve is a PNG picture")
    try:
        return write_curve(rows, target, title=resolved(log.parent).name)
    except AutoencError as e:
        raise AutoencError(f"{log}: {e}") from None
