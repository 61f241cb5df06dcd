"""The commands that put trained weights to work: eval (quality against bicubic and JPEG), score, export."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from .cli_common import DeviceOption, MaxMemoryOption, WeightsOption, app, err, friendly_errors, load_weights, out, prepare_outputs, weights_note
from .errors import AutoencError


@app.command("eval")
@friendly_errors
def evaluate(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="a Tiny ImageNet root (its val split is used) or a folder of images (all used)")],
    weights: WeightsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout instead of a table")] = False,
    limit: Annotated[Optional[int], typer.Option(help="only the first N image files (sorted by path)")] = None,
    worst_png: Annotated[Path, typer.Option(help="PNG of the 16 worst reconstructions (originals above them)")] = Path("eval_worst.png"),
    device: DeviceOption = "auto",
    cache_dir: Annotated[Optional[Path], typer.Option(help="dataset cache (default $XDG_CACHE_HOME/autoenc)")] = None,
    whole: Annotated[bool, typer.Option("--whole", help="score each picture at its own size (encoded and decoded as encode and decode do), against bicubic at 1/6 of the numbers")] = False,
    max_memory: MaxMemoryOption = None,
):
    """Score reconstructions (PSNR, SSIM, MSE on 8-bit pixels) against bicubic and JPEG at the same 2,048 numbers."""
    import json
    from rich.table import Table
    from .evaluate import BICUBIC_SIDE, JPEG_BUDGET, evaluate as run_eval
    from .hardware import pick_device
    from .progress import TrainProgress
    if whole:
        return evaluate_whole_pictures(data, weights, as_json, limit, device, max_memory)
    prepare_outputs([], [worst_png])
    if data.is_dir() and worst_png.resolve().is_relative_to(data.resolve()):  # it would be scored next time
        raise AutoencError(f"{worst_png}: is inside the dataset {data}; give a --worst-png outside it")
    model, meta = load_weights(weights)
    model.to(pick_device(device))
    bars = TrainProgress(err)
    try:
        result = run_eval(data, model, limit, worst_png, cache_dir, bars.cache_progress)
    finally:
        bars.stop()
    if result.skipped:
        err.print(f"[yellow]warning:[/] skipped {result.skipped} unreadable image file(s) in {escape(str(data))}")
    err.print(weights_note(weights, meta))
    err.print(f"worst reconstructions: {escape(str(worst_png))}")
    summary = result.to_json()
    if as_json:
        print(json.dumps(summary))
        return
    jpeg = summary["baselines"]["jpeg"]
    over = f", {jpeg['over_budget']} over budget at quality 1" if jpeg["over_budget"] else ""
    table = Table(title=f"{summary['images']} images of {escape(str(data))}", caption=f"jpeg: the largest quality within {JPEG_BUDGET:,} bytes")
    for name in ("method", "PSNR dB", "SSIM", "MSE", "per image"):
        table.add_column(name, justify="left" if name in ("method", "per image") else "right")
    rows = [("model", summary, "2,048 latent numbers"),
            ("bicubic", summary["baselines"]["bicubic"], f"{BICUBIC_SIDE}x{BICUBIC_SIDE}x3 = {BICUBIC_SIDE**2 * 3:,} pixels"),
            ("jpeg", jpeg, f"{jpeg['bytes']:,.0f} bytes avg, quality {jpeg['quality']:.1f}{over}")]
    for name, s, note in rows:
        table.add_row(name, f"{s['psnr']:.2f}", f"{s['ssim']:.4f}", f"{s['mse']:.1f}", note)
    out.print(table)


def evaluate_whole_pictures(data: Path, weights: Optional[Path], as_json: bool, limit: Optional[int], device: str,
                            max_memory: Optional[float]) -> None:
    import json
    from rich.table import Table
    from .evaluate import evaluate_whole
    from .hardware import pick_device
    from .progress import TrainProgress
    model, meta = load_weights(weights)
    model.to(pick_device(device))
    bars = TrainProgress(err)
    try:
        result = evaluate_whole(data, model, limit, bars.cache_progress, max_memory)
    finally:
        bars.stop()
    if result.skipped:
        err.print(f"[yellow]warning:[/] skipped {result.skipped} unreadable or tiny image file(s) in {escape(str(data))}")
    err.print(weights_note(weights, meta))
    summary = result.to_json()
    if as_json:
        print(json.dumps(summary))
        return
    gap = summary["vs_bicubic_db"]
    table = Table(title=f"{summary['pictures']} pictures of {escape(str(data))}, each at its own size",
                  caption=f"model - bicubic: {gap['mean']:+.2f} dB on average, worst {gap['worst']:+.2f} dB "
                          f"({escape(Path(gap['worst_file']).name)}), {gap['below_3db']} more than 3 dB below")
    for name in ("method", "PSNR dB", "SSIM", "MSE", "numbers kept"):
        table.add_column(name, justify="left" if name in ("method", "numbers kept") else "right")
    for name, s, note in (("model", summary, "latent: 1/6"), ("bicubic", summary["baselines"]["bicubic"], "each side x 1/sqrt(6)")):
        table.add_row(name, f"{s['psnr']:.2f}", f"{s['ssim']:.4f}", f"{s['mse']:.1f}", note)
    out.print(table)
