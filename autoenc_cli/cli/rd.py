"""`autoenc eval DATA --rd`: the command's side of ratedistortion.py (progress bars, tables, the PNG).

Imported only when --rd is given (it brings torch in through ratedistortion)."""

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from autoenc_cli.cli.common import (err, model_on_device, outside_data, print_json, print_table, progress_bars, weights_fingerprint,
                                    weights_note)
from autoenc_cli.codec.inputs import named_as
from autoenc_cli.errors import counted
from autoenc_cli.fileio import resolved, shown
from autoenc_cli.measures.ratedistortion import CODEC_NAMES, STORAGES, rate_distortion, write_rd_png


def evaluate_rate_distortion(data: Path, weights: Path | None, as_json: bool, limit: int | None, device: str,
                             cache_dir: Path | None, rd_png: Path | None) -> None:
    if rd_png is not None:
        outside_data(rd_png, data, "an --rd-png")
        named_as(rd_png, ".png", "the plot is a PNG picture", "--rd-png")
    model, meta = model_on_device(weights, device)
    with progress_bars() as progress:  # the sidecars name the weights as encode's do: their length is part of the bytes counted
        result = rate_distortion(data, model, limit, cache_dir, progress, weights_fingerprint(weights))
    if result.skipped:
        err.print(f"[yellow]warning:[/] skipped {counted(result.skipped, 'unreadable image file')} in {escape(str(data))}")
    err.print(weights_note(weights, meta))
    summary = result.to_json()
    if rd_png is not None:
        write_rd_png(summary, rd_png, f"{counted(summary['images'], 'picture')} of {shown(resolved(data).name)}, 64x64")
        err.print(f"rate against distortion plot: {escape(str(rd_png))}")
    if as_json:
        print_json(summary)
        return
    print_table(latent_table(summary, data))
    print_table(codec_table(summary))


def signed(db: float | None) -> str:
    return "-" if db is None else f"{db:+.2f}"


def latent_table(summary: dict, data: Path):
    caption = ("array: the .npy alone; file: the .npy and its JSON sidecar, as encode writes them (int8 needs the "
               "sidecar's scales). vs: PSNR minus the codec's at the same bits per pixel (array / file), interpolated "
               "between qualities; - where outside them")
    for dtype, needs in summary["same_psnr"].items():  # the other way round: the codecs' size at the model's quality
        reach = ", ".join(f"{CODEC_NAMES[key[:-4]]} at {'-' if bpp is None else f'{bpp:.2f}'}" for key, bpp in needs.items())
        caption += f"\n{dtype}'s {summary['latents'][dtype]['psnr']:.2f} dB is reached, in bits per pixel, by {reach}"
    table = Table(title=f"autoencoder, {counted(summary['images'], 'picture')} of {escape(str(data))} (64x64)", caption=caption)
    for name in ("dtype", "storage", "array B", "array bpp", "file B", "file bpp", "PSNR dB", "SSIM", "vs JPEG dB", "vs WebP dB"):
        table.add_column(name, justify="left" if name in ("dtype", "storage") else "right")
    versus = {(v["dtype"], v["count"], v["storage"]): v for v in summary["versus"]}
    for dtype, latent in summary["latents"].items():
        for storage in STORAGES:
            array, file = versus[dtype, "array", storage], versus[dtype, "file", storage]
            table.add_row(dtype, storage if storage == "stored" else f"{storage} -9",
                          f"{latent['array_bytes'][storage]:,.0f}", f"{array['bpp']:.2f}",
                          f"{latent['file_bytes'][storage]:,.0f}", f"{file['bpp']:.2f}",
                          f"{latent['psnr']:.2f}", f"{latent['ssim']:.4f}",
                          f"{signed(array['jpeg_db'])} / {signed(file['jpeg_db'])}",
                          f"{signed(array['webp_db'])} / {signed(file['webp_db'])}")
    return table


def codec_table(summary: dict):
    table = Table(title="JPEG and WebP (Pillow, lossy) on the same pictures: mean bytes of the whole file")
    table.add_column("quality", justify="right")
    for codec in ("JPEG", "WebP"):
        for name in ("B", "bpp", "PSNR dB", "SSIM"):
            table.add_column(f"{codec} {name}", justify="right")
    for jpeg, webp in zip(summary["codecs"]["jpeg"], summary["codecs"]["webp"]):
        table.add_row(str(jpeg["quality"]), *(cell for c in (jpeg, webp) for cell in
                                             (f"{c['bytes']:,.0f}", f"{c['bpp']:.2f}", f"{c['psnr']:.2f}", f"{c['ssim']:.4f}")))
    return table
