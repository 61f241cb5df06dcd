"""The `autoenc` command: each subcommand parses options, calls the library, prints.

Commands that put trained weights to work (eval, score, export) live in work.py; what all share, in common.py."""

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from autoenc_cli import __version__
from autoenc_cli.cli.common import (CodecPrecisionOption, DeviceOption, MaxMemoryOption, Precision, RefineOption, WeightsOption, app,
                                    check_inputs, err, friendly_errors, job_bar, model_on_device, out, output_option, output_paths,
                                    precision_note, prepare_outputs, print_table, progress_bars, rank_zero, skipped_error, weights_fingerprint,
                                    weights_note)
from autoenc_cli.training.config import (CUDA_BATCH, DEFAULT_BATCH, DEFAULT_EPOCHS, RANGES, RECIPE_BATCH, RECIPES, WARMUP_CAP,
                                         WARMUP_FRACTION, TrainConfig)
from autoenc_cli.codec.inputs import PICTURE_FORMATS_HELP
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.measures import TIMED_STEPS


class Color(str, Enum):
    rgb = "rgb"
    lab = "lab"


class Latent(str, Enum):
    relu = "relu"
    linear = "linear"


def get_dataset(folder: Path, url: Optional[str] = None, md5: Optional[str] = None) -> bool:
    from autoenc_cli.training.download import OFFICIAL_MD5, OFFICIAL_URL, download_dataset
    from autoenc_cli.cli.progress import BytesProgress
    with BytesProgress(err) as bar:
        return download_dataset(folder, url or OFFICIAL_URL, md5 if (md5 or url) else OFFICIAL_MD5, bar, err.print)


@app.command()
@friendly_errors
def download(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="where the dataset goes")] = Path("tiny-imagenet-200"),
    url: Annotated[Optional[str], typer.Option(help="a mirror (http, https, file://) or a local zip, instead of the official URL")] = None,
    md5: Annotated[Optional[str], typer.Option(help="expected MD5 of the zip (default: the official one, or none with --url)")] = None,
):
    """Download Tiny ImageNet (248 MB), resuming an interrupted download, check its MD5 and extract it safely."""
    if get_dataset(folder, url, md5):
        out.print(f"ready: {escape(str(folder))}; train with: autoenc train {escape(str(folder))}")


def setting(name: str, help: str, param_decls: tuple[str, ...] = (), **extra):
    """A train option whose default and range live in config.py (TrainConfig, RANGES); --help shows both."""
    return typer.Option(*param_decls, help=help, **(RANGES[name].typer() if name in RANGES else {}), **extra)


D = TrainConfig(data="")  # the defaults, read from their one home


def named_options(ctx: typer.Context) -> set[str]:
    """The TrainConfig fields whose options were given on the command line (not left at their defaults)."""
    given = {name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"}
    return {"out" if name == "out_dir" else name for name in given}


@app.command()
@friendly_errors
def train(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(metavar="DATA", help="a Tiny ImageNet root (tiny-imagenet-200) or any folder of images (photos of any size: random windows)")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="run folder: model, state, log.csv, samples/")] = Path(D.out),
    epochs: Annotated[Optional[int], setting("epochs", f"passes over the training images (default: {DEFAULT_EPOCHS}; on --resume: the run's)")] = None,
    max_steps: Annotated[Optional[int], setting("max_steps", "stop after this many steps (overrides --epochs when smaller; on --resume: the run's)")] = None,
    batch_size: Annotated[Optional[int], setting("batch_size", f"images per step, per process (default: {DEFAULT_BATCH}; "
                                                 f"on a GPU: {CUDA_BATCH})")] = None,
    lr: Annotated[Optional[float], setting("lr", "peak learning rate (warm-up, then cosine decay to zero) "
                                           f"(default: {RECIPES['scratch']['lr']:g}, less below a batch of {RECIPE_BATCH}; "
                                           f"with --init: {RECIPES['fine-tune']['lr']:g}; both x sqrt(B / {RECIPE_BATCH}) for "
                                           f"the global batch B, the from-scratch one at most {RECIPES['scratch']['max_lr']:g})")] = None,
    warmup_steps: Annotated[Optional[int], setting("warmup_steps", "linear learning-rate warm-up steps (default: "
                                                   f"{WARMUP_FRACTION:.0%} of the run's steps, at most {WARMUP_CAP}; "
                                                   "at most half of the run)")] = None,
    relu_leak: Annotated[Optional[float], setting("relu_leak", "ReLU negative slope at the start, annealed to 0 (plain ReLU) by --leak-until "
                                                  f"(default: {RECIPES['scratch']['relu_leak']:g}; with --init: {RECIPES['fine-tune']['relu_leak']:g})")] = None,
    leak_until: Annotated[float, setting("leak_until", "fraction of the steps after which the ReLUs are plain ReLUs")] = D.leak_until,
    channel_multiplier: Annotated[int, setting("channel_multiplier", "every hidden layer's channels x this: 1 = the seed's network, "
                                               "2 = its big network (--width: its old name)", param_decls=("--channel-multiplier", "--width"))] = D.channel_multiplier,
    device: DeviceOption = D.device,
    precision: Annotated[Precision, typer.Option(help="auto (bf16 only where native), fp32, bf16")] = Precision(D.precision),
    seed: Annotated[int, setting("seed", "random seed: initialisation, order, windows and flips")] = D.seed,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run saved in --out")] = False,
    auto_resume: Annotated[bool, typer.Option("--auto-resume", help="continue the run saved in --out if there is one, else start "
                                              "afresh: one command for job scripts, retries and torchrun --max-restarts")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(help="dataset cache (default $XDG_CACHE_HOME/autoenc)")] = None,
    save_every: Annotated[int, setting("save_every", "save the training state every N steps")] = D.save_every,
    save_minutes: Annotated[float, setting("save_minutes", "... or every M minutes, whichever comes first")] = D.save_minutes,
    fraction: Annotated[float, setting("fraction", "train on this fraction of each class's images, chosen from --seed (the seed's example: 0.2)")] = D.fraction,
    color: Annotated[Color, typer.Option(help="the network's pixel encoding (stored in the weights; PSNR is always RGB)")] = Color(D.color),
    latent: Annotated[Latent, typer.Option(help="relu: the seed's network; linear: no ReLU after the encoder's last convolution "
                                                "(stored in the weights; every command builds it from the file)")] = Latent(D.latent),
    download: Annotated[bool, typer.Option("--download", help="if DATA is missing, download Tiny ImageNet into it first")] = False,
    init: Annotated[Optional[str], typer.Option(help="start from these weights (a .safetensors, or 'default': the bundled ones) instead of random ones")] = None,
    windows_per_photo: Annotated[int, setting("windows_per_photo", "photos larger than 64x64: random 64x64 windows drawn from each photo per epoch")] = D.windows_per_photo,
    max_zoom: Annotated[Optional[float], setting("max_zoom", "... at zooms from 1 (the photo's own pixels) to this (default: the whole picture's short side)")] = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="photos: also turn windows by random quarter turns")] = D.rotate,
    shuffle_channels: Annotated[bool, typer.Option("--shuffle-channels", help="photos: put windows' RGB channels in a random order")] = D.shuffle_channels,
    dist_timeout: Annotated[float, setting("dist_timeout", "under torchrun: seconds a process waits for the others (a hung "
                                           "or vanished peer) before it fails with one line; a dead one fails them at once")] = D.dist_timeout,
):
    """Train an autoencoder; writes OUT/model.safetensors, log.csv, samples/ and the state for --resume."""
    from autoenc_cli.cli.progress import TrainProgress
    from autoenc_cli.training.train import train as run_training
    if download and not data.exists():
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise AutoencError(f"{data}: missing; run `autoenc download {data}` once before launching torchrun")
        get_dataset(data)
    cfg = TrainConfig(data=str(data), out=str(out_dir), epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr,
                      warmup_steps=warmup_steps, relu_leak=relu_leak, leak_until=leak_until, channel_multiplier=channel_multiplier, device=device,
                      precision=precision.value, seed=seed, cache_dir=str(cache_dir) if cache_dir else None,
                      save_every=save_every, save_minutes=save_minutes, fraction=fraction, color=color.value, latent=latent.value, init=init,
                      windows_per_photo=windows_per_photo, max_zoom=max_zoom, rotate=rotate, shuffle_channels=shuffle_channels,
                      dist_timeout=dist_timeout)
    if auto_resume and not resume:
        from autoenc_cli.training.checkpoint import saved_step
        step = saved_step(out_dir)
        resume = step is not None
        if not resume and os.environ.get("RANK", "0") == "0":  # resuming, training says where it continues
            err.print(f"auto-resume: no saved run in {escape(str(out_dir))}; starting afresh")
    result = run_training(cfg, resume=resume, say=err.print, progress_factory=lambda: TrainProgress(err), named=named_options(ctx))
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    out.print(f"done: step {result.step}, val PSNR {result.val_psnr:.2f} dB; weights in {escape(str(result.weights))}")


class LatentDtype(str, Enum):
    float32 = "float32"
    float16 = "float16"
    int8 = "int8"


@app.command()
@friendly_errors
def encode(
    images: Annotated[list[Path], typer.Argument(metavar="IMAGE", help="image files or folders of them, any size (kept: padded to a multiple of 16, cropped back by decode)")],
    output: output_option("latent .npy (+ .npy.json sidecar; a name ending in .npy), or a folder for several (default: ./NAME.npy, never over an existing file)") = None,
    weights: WeightsOption = None,
    dtype: Annotated[LatentDtype, typer.Option(help="stored precision: int8 has per-channel scales in the sidecar")] = LatentDtype.float32,
    resize: Annotated[Optional[int], typer.Option(help="centre-crop to a square and resize to NxN first (64: the training size)")] = None,
    max_memory: MaxMemoryOption = None,
    stack: Annotated[Optional[Path], typer.Option(help="write all latents as one (N, C, H/16, W/16) .npy, the paths in FILE.json "
                                                       "(pictures of one size, or --resize); folders are searched for images")] = None,
    precision: CodecPrecisionOption = Precision.fp32,
    refine: RefineOption = 0,
    device: DeviceOption = "auto",
):
    """Encode images into latents: (128, H/16, W/16) .npy, channel first, plus a JSON sidecar with the picture's size."""
    from autoenc_cli.codec.encoding import check_resize
    from autoenc_cli.codec.inputs import check_pictures_given
    check_pictures_given(images)  # a latent given back to encode is named as such before its outputs are judged
    check_resize(resize)
    if stack is not None:
        if precision != Precision.fp32:
            raise AutoencError("--precision: --stack encodes in fp32 only")
        return encode_to_stack(images, stack, output, weights, dtype, resize, max_memory, refine, device)
    from autoenc_cli.api import load
    from autoenc_cli.codec.inputs import LATENT_FILE, LATENT_SUFFIX, named_as
    from autoenc_cli.codec.latentfile import sidecar_path
    from autoenc_cli.data.listing import image_files
    check_inputs([p for p in images if not p.is_dir()])  # a folder's unreadable pictures are skipped, not refused
    pictures = image_files(images) if any(p.is_dir() for p in images) else images
    if len(pictures) > 1:
        return encode_many(pictures, output, weights, dtype, resize, max_memory, precision, refine, device)
    targets = output_paths(pictures, output, ".npy")
    prepare_outputs(pictures, targets + [sidecar_path(t) for t in targets])  # every output checked before any work
    named_as(targets[0], LATENT_SUFFIX, LATENT_FILE)
    if not rank_zero():
        return  # one picture: one process does it
    ae = load(weights, device, max_memory=max_memory, precision=precision.value)  # the Python API's path: the same bytes
    with progress_bars() as progress:
        bar = (lambda done, total: progress(done, total, f"refining {escape(pictures[0].name)}")) if refine else None
        shape, (w, h) = ae.encode_file(pictures[0], targets[0], dtype.value, resize, refine, bar)
    out.print(f"{escape(str(pictures[0]))} {w}x{h} -> {escape(str(targets[0]))} {tuple(shape)} {dtype.value}")
    err.print(weights_note(weights, ae.metadata, precision_note(precision, ae.precision, ae.device)))


def encode_many(pictures: list[Path], output: Optional[Path], weights: Optional[Path], dtype, resize, max_memory,
                precision, refine: int, device: str) -> None:
    """Several pictures (or folders) into latents, one file each, as one job: shared among torchrun's processes,
    continued when run again after a kill (codec/collection.py)."""
    from autoenc_cli.api import load
    from autoenc_cli.codec.collection import JOB_FOLDER, encode_files
    from autoenc_cli.codec.latentfile import sidecar_path
    unfinished = (output if output is not None else Path(".")) / JOB_FOLDER
    targets = output_paths(pictures, output, ".npy", allow_existing=unfinished.is_dir())  # its own outputs, a job's
    prepare_outputs(pictures, targets + [sidecar_path(t) for t in targets])
    ae = load(weights, device, max_memory=max_memory, precision=precision.value)
    chosen = precision_note(precision, ae.precision, ae.device)
    with job_bar(f"refining ({refine} steps each)" if refine else "encoding") as progress:
        result = encode_files(ae, pictures, targets, dtype.value, resize, refine, progress, err.print)
    if result is None:
        return  # another process of the job: rank 0 reports it
    for w in result.written:
        out.print(f"{escape(str(w.picture))} {w.size[0]}x{w.size[1]} -> {escape(str(w.latent))} {w.shape} {dtype.value}")
    err.print(weights_note(weights, ae.metadata, chosen))
    if result.skipped:
        raise skipped_error(result.skipped, len(pictures))


def encode_to_stack(inputs: list[Path], stack: Path, output: Optional[Path], weights: Optional[Path], dtype, resize,
                    max_memory: Optional[float], refine: int = 0, device: str = "auto") -> None:
    from autoenc_cli.codec.stack import encode_stack, sidecar
    from autoenc_cli.data.listing import image_files
    from autoenc_cli.codec.inputs import LATENT_SUFFIX, named_as
    if output is not None:
        raise AutoencError("--stack FILE and -o: give one of them")
    files = image_files(inputs)
    prepare_outputs(files, [stack, sidecar(stack)])
    named_as(stack, LATENT_SUFFIX, "a stack of latents is a .npy file (NumPy data)", "--stack")
    model, meta = model_on_device(weights, device)
    with job_bar(f"refining ({refine} steps each)" if refine else "encoding") as progress:
        result = encode_stack(model, files, stack, resize, dtype.value, weights_fingerprint(weights), progress,
                              max_memory_mb=max_memory, refine=refine, say=err.print)
    if result is None:
        return  # another process of the job: rank 0 reports it
    out.print(f"{counted(len(result.paths), 'picture')} -> {escape(str(stack))} {result.shape} {dtype.value}; paths in {escape(str(sidecar(stack)))}")
    err.print(weights_note(weights, meta))
    if result.skipped:
        raise skipped_error(result.skipped, len(files), sidecar(stack))


@app.command()
@friendly_errors
def decode(
    latents: Annotated[list[Path], typer.Argument(metavar="LATENT", help="latent .npy files made by autoenc encode (sidecars are found beside them)")],
    output: output_option(f"picture file: {PICTURE_FORMATS_HELP}; or a folder for several, of PNGs (default: "
                          "./NAME.rec.png, never over an existing file)") = None,
    weights: WeightsOption = None,
    max_memory: MaxMemoryOption = None,
    precision: CodecPrecisionOption = Precision.fp32,
):
    """Decode latents back into RGB pictures (PNG, or JPEG, WebP, TIFF by -o's suffix) of the size they were encoded from."""
    from autoenc_cli.api import load
    from autoenc_cli.cli.progress import map_with_progress
    from autoenc_cli.codec.inputs import format_note, picture_format
    from autoenc_cli.codec.latentfile import check_latent_files, sidecar_path, without_sidecars
    latents = without_sidecars(latents)
    check_inputs(latents)
    check_latent_files(latents)  # a picture given to decode is named as such before its output is looked at
    targets = output_paths(latents, output, ".png", default_suffix=".rec.png")
    prepare_outputs(latents + [sidecar_path(p) for p in latents], targets)
    for t in targets:
        picture_format(t)  # a name whose suffix says no format decode writes is refused before any work
    if not rank_zero():
        return  # under torchrun one process decodes (the others would write the same files again)
    ae = load(weights, max_memory=max_memory, precision=precision.value)
    results = map_with_progress(zip(latents, targets), lambda it: ae.decode_file(*it), "decoding", err)
    for (src, dst), ((w, h), warning) in zip(zip(latents, targets), results):
        if warning:
            err.print(f"[yellow]warning:[/] {escape(warning)}")
        lossy = format_note(dst)
        out.print(f"{escape(str(src))} -> {escape(str(dst))} {w}x{h}" + (f", {lossy}" if lossy else ""))
    err.print(weights_note(weights, ae.metadata, precision_note(precision, ae.precision, ae.device)))


from autoenc_cli.cli import work  # noqa: E402,F401  pyflakes: unused (it registers eval, score, export after the codec commands)


@app.command()
@friendly_errors
def info(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a weights .safetensors ('default': the bundled ones), a training state, a latent .npy or an --stack "
                                                               "one (or its .npy.json), or an exported .onnx")],
    layers: Annotated[bool, typer.Option("--layers", help="for weights: also the layer table with shapes")] = False,
):
    """Show what a file holds: a model's config, parameters and provenance, or a latent's shape, dtype and source."""
    from autoenc_cli.cli.info import describe
    print_table(describe(file, layers))


@app.command()
@friendly_errors
def plot(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="a run folder made by autoenc train, or its log.csv")],
    output: output_option("PNG to write (default: curve.png beside log.csv)") = None,
):
    """Draw the training curve (loss and validation PSNR against steps) from log.csv as a PNG."""
    from autoenc_cli.training.plot import plot_log
    out.print(f"wrote {escape(str(plot_log(run, output)))}")


@app.command()
@friendly_errors
def bench(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="dataset to train on (its cache is built first if missing)")],
    steps: Annotated[int, typer.Option(min=1, help="steps of the timed `autoenc train` process: enough for its loop's rate "
                                               "to settle (the first log window, the start, is left out)")] = TIMED_STEPS,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="time this many epochs instead of --steps")] = None,
    naive_steps: Annotated[int, typer.Option(help="steps of the naive reference")] = 8,
    device: DeviceOption = "auto",
    cache_dir: Annotated[Optional[Path], typer.Option(help="dataset cache (default $XDG_CACHE_HOME/autoenc)")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="also write the full report as JSON to this file (a file, unlike eval's --json on stdout: bench runs for minutes and its table is what a person reads)")] = None,
):
    """Measure the machine it runs on: matmul ceiling, naive reference, `autoenc train` speed, codec speed, memory."""
    from rich.table import Table

    from autoenc_cli.fileio import check_writable, write_text_atomic
    from autoenc_cli.measures.bench import run, table, to_json
    if json_out:
        check_writable(json_out)  # refused before minutes of measuring, not after
    report = run(str(data), steps, naive_steps, str(cache_dir) if cache_dir else None, device, say=err.print, epochs=epochs)
    grid = Table("measure", "value", title="autoenc bench")
    for what, value in table(report):
        grid.add_row(what, value)
    print_table(grid)
    if json_out:
        write_text_atomic(json_out, to_json(report))


def version_callback(value: bool):
    if value:
        out.print(f"autoenc {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=version_callback,
                                              is_eager=True)] = False):
    """Train and run the seed's convolutional image autoencoder."""
