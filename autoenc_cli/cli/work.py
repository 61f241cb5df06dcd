"""The commands that put trained weights to work: eval (quality against bicubic and JPEG), score, export."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from autoenc_cli.cli.common import (CodecPrecisionOption, DeviceOption, MaxMemoryOption, Precision, RefineOption, WeightsOption, app, err, finite,
                                    friendly_errors, job_bar, model_on_device, out, output_option, output_paths, outside_data, precision_note,
                                    prepare_outputs, print_json, print_table, progress_bars, skipped_error, weights_fingerprint, weights_note)
from autoenc_cli.errors import AutoencError, counted


EVAL_READS = {  # the options that not every mode of eval reads, and the modes that read them
    "--worst-png": ("64x64",), "--cache-dir": ("64x64", "whole", "rd"), "--max-memory": ("whole",), "--rd-png": ("rd",),
    "--refine": ("64x64", "whole"), "--precision": ("64x64", "whole"),
}
PURPOSE = {"--worst-png": "draws the 64x64 evaluation's worst reconstructions", "--max-memory": "bounds --whole's work on one picture",
           "--cache-dir": "holds the 64x64 pictures decoded once (--whole reads each picture at its own size)",
           "--rd-png": "draws the --rd measurement", "--refine": "refines each latent before it is decoded",
           "--precision": "sets the network's arithmetic"}
MODE_FLAG = {"whole": "--whole", "rd": "--rd"}


def refuse_unused(mode: str, given: dict) -> None:
    """An option the chosen mode of eval does not read is an error, not a no-op (`eval --whole --worst-png F`
    wrote no F)."""
    for option, value in given.items():
        if value in (None, False) or mode in EVAL_READS[option]:
            continue
        if mode in MODE_FLAG:
            raise AutoencError(f"{option} {PURPOSE[option]}; it does not combine with {MODE_FLAG[mode]}")
        raise AutoencError(f"{option} {PURPOSE[option]}: give {' or '.join(MODE_FLAG[m] for m in EVAL_READS[option])} too")


@app.command("eval")
@friendly_errors
def evaluate(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="a Tiny ImageNet root (its val split is used) or a folder of images (all used)")],
    weights: WeightsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout instead of a table")] = False,
    limit: Annotated[Optional[int], typer.Option(help="only the first N image files (sorted by path)")] = None,
    worst_png: Annotated[Optional[Path], typer.Option(help="also draw the 16 worst reconstructions (originals above them) into this PNG (none is written unless you name one)")] = None,
    device: DeviceOption = "auto",
    cache_dir: Annotated[Optional[Path], typer.Option(help="where an unfinished evaluation is kept until it is run again, and --rd's "
                                                           "decoded pictures (default $XDG_CACHE_HOME/autoenc)")] = None,
    whole: Annotated[bool, typer.Option("--whole", help="score each picture at its own size (encoded and decoded as encode and decode do), against bicubic at 1/6 of the numbers")] = False,
    max_memory: MaxMemoryOption = None,
    rd: Annotated[bool, typer.Option("--rd", help="rate against distortion instead: bytes, bits per pixel, PSNR and SSIM of each latent dtype (as stored, zlib -9, lzma -9) and of JPEG and WebP at qualities 5-95 (no --worst-png)")] = False,
    rd_png: Annotated[Optional[Path], typer.Option(help="with --rd: also draw PSNR against bits per pixel into this PNG (none is written unless you name one)")] = None,
    refine: RefineOption = 0,
    precision: CodecPrecisionOption = Precision.fp32,
):
    """Score reconstructions (PSNR, SSIM, MSE on 8-bit pixels) against bicubic and JPEG at the same 2,048 numbers."""
    from autoenc_cli.codec.inputs import named_as
    from autoenc_cli.measures.evaluate import evaluate as run_eval
    if rd and whole:
        raise AutoencError("--rd measures 64x64 pictures; it does not combine with --whole")
    refuse_unused("rd" if rd else "whole" if whole else "64x64",
                  {"--worst-png": worst_png, "--max-memory": max_memory, "--cache-dir": cache_dir, "--rd-png": rd_png,
                   "--refine": refine, "--precision": precision != Precision.fp32})
    if rd:
        from autoenc_cli.cli.rd import evaluate_rate_distortion
        return evaluate_rate_distortion(data, weights, as_json, limit, device, cache_dir, rd_png)
    if whole:
        return evaluate_whole_pictures(data, weights, as_json, limit, device, max_memory, refine, precision, cache_dir)
    if worst_png is not None:
        outside_data(worst_png, data, "a --worst-png")
        named_as(worst_png, ".png", "the worst reconstructions are drawn as a PNG picture", "--worst-png")
    model, meta, chosen = model_and_precision(weights, device, precision)
    with job_bar(refining_label(refine) or "evaluating") as progress:
        result = run_eval(data, model, limit, worst_png, cache_dir, progress, refine, weights_fingerprint(weights), err.print,
                          chosen)
    if result is None:
        return  # another process of the job: rank 0 reports it
    err.print(weights_note(weights, meta, precision_note(precision, chosen, next(model.parameters()).device)))
    if worst_png is not None:
        err.print(f"worst reconstructions: {escape(str(worst_png))}")
    print_summary(result.to_json(), as_json, data)
    if result.unreadable:
        raise skipped_error(result.unreadable, result.images + result.skipped)


def print_summary(summary: dict, as_json: bool, data: Path) -> None:
    from rich.table import Table
    from autoenc_cli.measures.evaluate import BICUBIC_SIDE, JPEG_BUDGET
    if as_json:
        print_json(summary)
        return
    jpeg = summary["baselines"]["jpeg"]
    over = f", {jpeg['over_budget']} over budget at quality 1" if jpeg["over_budget"] else ""
    table = Table(title=f"{counted(summary['images'], 'image')} of {escape(str(data))}", caption=f"jpeg: the largest quality within {JPEG_BUDGET:,} bytes")
    for name in ("method", "PSNR dB", "SSIM", "MSE", "per image"):
        table.add_column(name, justify="left" if name in ("method", "per image") else "right")
    rows = [*one_pass_row(summary, "2,048 latent numbers"),
            ("model", summary, "2,048 latent numbers" + refined_note(summary["refine"])),
            ("bicubic", summary["baselines"]["bicubic"], f"{BICUBIC_SIDE}x{BICUBIC_SIDE}x3 = {BICUBIC_SIDE**2 * 3:,} pixels"),
            ("jpeg", jpeg, f"{jpeg['bytes']:,.0f} bytes avg, quality {jpeg['quality']:.1f}{over}")]
    for name, s, note in rows:
        table.add_row(name, f"{s['psnr']:.2f}", f"{s['ssim']:.4f}", f"{s['mse']:.1f}", note)
    print_table(table)


def evaluate_whole_pictures(data: Path, weights: Optional[Path], as_json: bool, limit: Optional[int], device: str,
                            max_memory: Optional[float], refine: int, precision: Precision,
                            cache_dir: Optional[Path] = None) -> None:
    from autoenc_cli.measures.evaluate import evaluate_whole
    model, meta, chosen = model_and_precision(weights, device, precision)
    with job_bar(refining_label(refine) or "evaluating whole pictures") as progress:
        result = evaluate_whole(data, model, limit, progress, max_memory, refine, cache_dir, weights_fingerprint(weights),
                                err.print, chosen)
    if result is None:
        return  # another process of the job: rank 0 reports it
    err.print(weights_note(weights, meta, precision_note(precision, chosen, next(model.parameters()).device)))
    print_whole_summary(result.to_json(), as_json, data)
    if result.unreadable:
        raise skipped_error(result.unreadable, len(result.files) + result.skipped)


def print_whole_summary(summary: dict, as_json: bool, data: Path) -> None:
    from rich.table import Table
    if as_json:
        print_json(summary)
        return
    gap = summary["vs_bicubic_db"]
    table = Table(title=f"{counted(summary['pictures'], 'picture')} of {escape(str(data))}, each at its own size",
                  caption=f"model - bicubic: {gap['mean']:+.2f} dB on average, worst {gap['worst']:+.2f} dB "
                          f"({escape(Path(gap['worst_file']).name)}), {gap['below_3db']} more than 3 dB below")
    for name in ("method", "PSNR dB", "SSIM", "MSE", "numbers kept"):
        table.add_column(name, justify="left" if name in ("method", "numbers kept") else "right")
    for name, s, note in (*one_pass_row(summary, "latent: 1/6"), ("model", summary, "latent: 1/6" + refined_note(summary["refine"])),
                          ("bicubic", summary["baselines"]["bicubic"], "each side x 1/sqrt(6)")):
        table.add_row(name, f"{s['psnr']:.2f}", f"{s['ssim']:.4f}", f"{s['mse']:.1f}", note)
    print_table(table)


def refining_label(steps: int) -> str:
    return f"refining ({steps} steps each)" if steps else ""


def refined_note(steps: int) -> str:
    return f", refined {steps} steps" if steps else ""


def one_pass_row(summary: dict, numbers: str) -> list[tuple[str, dict, str]]:
    """With --refine, the model's row before the steps, above the refined one: what the refinement buys."""
    return [("one pass", summary["one_pass"], f"{numbers}, the encoder's pass alone")] if "one_pass" in summary else []


def model_and_precision(weights: Optional[Path], device: str, precision: Precision):
    """model_on_device, and the arithmetic --precision names on that device (auto: bf16 where native)."""
    from autoenc_cli.model.hardware import pick_precision
    model, meta = model_on_device(weights, device)
    return model, meta, pick_precision(precision.value, next(model.parameters()).device)


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option `name` was on the command line (not left at its default)."""
    return getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"


class Measure(str, Enum):
    peak = "peak"
    mse = "mse"
    ssim = "ssim"


OVER_THRESHOLD_EXIT = 3  # --exit-code: distinct from 1 (an error) and 2 (a usage error)


@app.command()
@friendly_errors
def score(
    ctx: typer.Context,
    data: Annotated[list[Path], typer.Argument(metavar="DATA", help="image files or folders (searched for images); each picture at its own size")],
    weights: WeightsOption = None,
    by: Annotated[Measure, typer.Option(help="the measure that ranks and is thresholded: peak = MSE of the worst 32x32 "
                                             "region, mse = the whole picture's, ssim = 1 - SSIM")] = Measure.peak,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of CSV")] = False,
    output: output_option("write the CSV (or JSON) to this file instead of stdout") = None,
    heatmaps: Annotated[Optional[Path], typer.Option(metavar="DIR", help="write error heatmaps over the worst pictures into this "
                                                     "folder (new, empty, or holding an earlier set, which is replaced)")] = None,
    worst: Annotated[int, typer.Option(min=1, help="how many of the worst pictures get heatmaps")] = 8,
    reference: Annotated[Optional[list[Path]], typer.Option(metavar="NORMAL", help="pictures known to be normal (files or "
                                                            "folders; repeatable): the threshold is a percentile of their errors")] = None,
    percentile: Annotated[float, typer.Option(min=0, max=100, callback=finite, help="the reference errors' percentile that is the threshold")] = 99.0,
    exit_code: Annotated[bool, typer.Option("--exit-code", help=f"exit with status {OVER_THRESHOLD_EXIT} when a picture is over the threshold (needs --reference)")] = False,
    device: DeviceOption = "auto",
    max_memory: MaxMemoryOption = None,
):
    """Rank pictures by reconstruction error (anomalies first): MSE, PSNR, SSIM, worst region; heatmaps; a threshold."""
    import json
    from autoenc_cli.data.listing import image_files
    from autoenc_cli.fileio import refuse_inside, write_text_atomic
    from autoenc_cli.measures.score import earlier_heatmaps, score as run_score, to_csv, write_heatmaps
    if exit_code and not reference:
        raise AutoencError("--exit-code needs --reference NORMAL (the threshold comes from normal pictures)")
    if given(ctx, "percentile") and not reference:
        raise AutoencError("--percentile is the reference pictures' percentile: give --reference NORMAL too")
    if given(ctx, "worst") and heatmaps is None:
        raise AutoencError("--worst says how many heatmaps to draw: give --heatmaps DIR too")
    files = image_files(data)
    refs = image_files(reference) if reference else None
    prepare_outputs(files, [output] if output else [])
    if heatmaps is not None:
        for folder in [p for p in data if p.is_dir()]:  # the heatmaps would be scored next time
            refuse_inside(heatmaps, folder, "a --heatmaps folder")
        earlier_heatmaps(heatmaps)  # a folder that holds the user's files is refused before the scoring, not after
    model, meta = model_on_device(weights, device)
    job_folder = output.with_name(f".{output.name}.job") if output else None  # else under the cache folder
    with job_bar("scoring") as progress:
        result = run_score(model, files, by.value, refs, percentile, max_memory, progress, weights_fingerprint(weights),
                           job_folder, err.print)
    if result is None:
        return  # another process of the job: rank 0 reports it
    with progress_bars() as progress:
        drawn = write_heatmaps(model, result, heatmaps, worst, max_memory, progress) if heatmaps else []
    text = json.dumps(result.to_json()) + "\n" if as_json else to_csv(result)
    if output:
        write_text_atomic(output, text)
    else:
        out.file.write(text)
        out.file.flush()  # a full disk fails here, before the summary says all went well
    top = result.scores[0]
    err.print(f"scored {counted(len(result.scores), 'picture')} by {by.value}; worst: {escape(top.file)} (PSNR {top.psnr:.2f} dB, "
              f"worst region MSE {top.peak:.0f})" + (f"; heatmaps of the worst {len(drawn)} in {escape(str(heatmaps))}" if drawn else ""))
    if result.threshold is not None:
        err.print(f"{result.over_count} of {len(result.scores)} over the threshold {result.threshold:.4g} "
                  f"(the {percentile:g}th percentile of {by.value} over {counted(result.reference_count, 'reference picture')})")
    err.print(weights_note(weights, meta))
    if result.unreadable:  # an error (1) before --exit-code's 3: a picture that was not scored may be the odd one
        raise skipped_error(result.unreadable, len(files) + len(refs or []))
    if exit_code and result.over_count:
        raise typer.Exit(OVER_THRESHOLD_EXIT)


class Part(str, Enum):
    encoder = "encoder"
    decoder = "decoder"
    autoencoder = "autoencoder"


@app.command("export")
@friendly_errors
def export(
    weights: Annotated[Optional[Path], typer.Argument(metavar="WEIGHTS", help="weights file (default: the bundled weights)")] = None,
    output: output_option("ONNX file (default: ./WEIGHTS-NAME.PART.onnx, never over an existing file)") = None,
    part: Annotated[Part, typer.Option(help="encoder: pixels -> latent; decoder: latent -> pixels; autoencoder: both")] = Part.autoencoder,
):
    """Export the network to ONNX for other runtimes: dynamic batch and size, float32 RGB in [0, 1] in and out (docs/export.md)."""
    from autoenc_cli.codec.export import export_onnx, require_onnx
    from autoenc_cli.codec.inputs import named_as
    from autoenc_cli.fileio import regular_file
    from autoenc_cli.model.weights import resolve_weights
    require_onnx()
    part = part.value
    source = resolve_weights(weights)
    regular_file(source, "weights file")  # a FIFO would block, a device never end
    if output is not None and (output.is_dir() or str(output).endswith(("/", "\\"))):
        raise AutoencError(f"{output}: is a folder; give -o a file name, such as {output / f'{source.stem}.{part}.onnx'}")
    target = output or output_paths([source], None, "", default_suffix=f".{part}.onnx")[0]
    prepare_outputs([source], [target])
    named_as(target, ".onnx", "an exported network is an ONNX file")
    result = export_onnx(source, target, part)
    out.print(f"wrote {escape(str(target))}: {part}, {escape(result.signature)}, {result.size_bytes / 1024:,.0f} KB")
    err.print(weights_note(weights, result.meta))
