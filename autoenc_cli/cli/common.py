"""What every `autoenc` command shares: the app, its consoles, one-line errors, the weights and the paths it checks."""

import contextlib
import functools
import json
import logging
import math
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

try:  # newer typer vendors its own click
    from typer._click import exceptions as click_errors
except ImportError:
    from click import exceptions as click_errors

from autoenc_cli.codec.budget import DEFAULT_MAX_MEMORY_MB, MAX_REFINE_STEPS, MIN_MAX_MEMORY_MB
from autoenc_cli.codec.inputs import check_inputs, check_max_memory, prepare_outputs  # noqa: F401 (the commands' gate)
from autoenc_cli.errors import AutoencError, Interrupted, SharedError, counted, one_line
from autoenc_cli.fileio import refuse_inside, regular_file
from autoenc_cli.cli.terminal import QuietWhenClosed, named_shell_completion


def short_range(type_name):
    """<int range> [x>=1] reads as <int> [x>=1]: the bounds already say it is a range, and in 80 columns the
    type column took a third of the width from the help text."""
    return type_name.replace(" range>", ">") if isinstance(type_name, str) else type_name


def plain_help_types() -> None:
    """Typer 0.29 (pinned) writes a flag's type as <bool>, a required argument as {NAME} and a list of paths as
    <list[Path]>: flags get no type, arguments their NAME, and a list of paths <path>..., as click wrote them;
    a number range's type is short."""
    from typer.core import TyperArgument, TyperOption
    option_type, argument_type = TyperOption.display_type_rich, TyperArgument.display_type_rich
    TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else short_range(option_type(self, ctx))
    TyperArgument.display_type_rich = lambda self, ctx: (
        "<path>..." if str(argument_type(self, ctx)).startswith("<list[Path]") else argument_type(self, ctx))
    TyperArgument._usage_display_name = lambda self: (
        (self.display_name_raw if self.required else f"[{self.display_name_raw}]") + ("..." if self.nargs != 1 else ""))


plain_help_types()
out = Console(file=QuietWhenClosed(sys.stdout), soft_wrap=True)
err = Console(file=QuietWhenClosed(sys.stderr, report=False), soft_wrap=True)


def bind_consoles() -> None:
    """out and err write to the streams this command starts with (a test runner swaps sys.stdout before it calls the
    app); they hold on to them, whatever a live display does to sys.stdout while the command runs."""
    out.file = QuietWhenClosed(sys.stdout)
    err.file = QuietWhenClosed(sys.stderr, report=False)


def finish_output() -> None:
    """Flush what the command printed, so that a failure to write it (stdout on a full disk) is said in one line
    and fails the command, instead of Python's complaint at exit."""
    try:
        out.file.flush()
    except AutoencError as e:
        err.print(f"[red]error:[/] {escape(one_line(str(e)))}")
        sys.exit(1)


class OneLineUsageErrors(TyperGroup):
    """A bad option value or a missing argument is one line on stderr too (exit 2), like every other error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        bind_consoles()
        named_shell_completion(sys.argv[1:] if args is None else list(args))
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
            finish_output()
        except getattr(click_errors, "NoArgsIsHelpError", ()) as e:  # the help has been printed
            sys.exit(e.exit_code)
        except click_errors.ClickException as e:
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            err.print(f"[red]error:[/] {escape(one_line(e.format_message()))}{escape(hint)}")
            sys.exit(e.exit_code)
        except typer.Abort:
            err.print("[yellow]aborted[/]")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(cls=OneLineUsageErrors, add_completion=True, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Train and run the seed's convolutional image autoencoder: a 64x64 picture <-> a 4x4x128 latent "
                       "(any size: 128 channels at 1/16 of the side).")

def output_option(help: str):
    """The -o/--output option of a command that writes files."""
    return Annotated[Optional[Path], typer.Option("-o", "--output", help=help)]


def finite(value: Optional[float]) -> Optional[float]:
    """A number option's callback: infinity and NaN pass a range check (inf >= 16), and mean nothing here."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value}: give a finite number")
    return value


def memory_budget(value: Optional[float]) -> Optional[float]:
    """--max-memory's callback: the codec's own check of the budget (the Python API's load() makes the same one)."""
    try:
        return check_max_memory(value)
    except AutoencError as e:
        raise typer.BadParameter(str(e)) from None


RefineOption = Annotated[int, typer.Option(
    "--refine", metavar="STEPS", min=0, max=MAX_REFINE_STEPS,
    help="after the encoder's pass, optimise each latent this many steps against the decoder: a better picture from "
         "the same weights and the same file format, at a cost in time (docs/refine.md) (0: the one pass)")]
WeightsOption = Annotated[Optional[Path], typer.Option("-w", "--weights", help="weights file (default: the bundled weights)")]
MaxMemoryOption = Annotated[Optional[float], typer.Option(
    "--max-memory", metavar="MB", min=MIN_MAX_MEMORY_MB, callback=memory_budget,
    help="memory for the network's work on one picture: larger pictures go through in exact tiles, with the result "
         f"of one pass (default: {DEFAULT_MAX_MEMORY_MB:,}; on a GPU half its free memory)")]


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


CodecPrecisionOption = Annotated[Precision, typer.Option(
    help="fp32; bf16 where the CPU or GPU runs it natively (faster; its cost in dB: docs/benchmarks.md); auto: bf16 "
         "where native")]


def precision_note(asked: Precision, chosen: str, device) -> str:
    """What --precision auto chose, for the weights line (nothing when a precision was named)."""
    if asked != Precision.auto:
        return ""
    why = "native" if chosen == "bf16" else "no native bf16"
    return f"; precision {chosen} (auto: {why} on {device.type})"


def friendly_errors(fn):
    """Bad input ends in one line on stderr and a non-zero exit, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from autoenc_cli.training.train import TrainingFailed, TrainingInterrupted
        try:
            return fn(*args, **kwargs)
        except (TrainingInterrupted, TrainingFailed) as e:
            if os.environ.get("RANK", "0") == "0":  # under torchrun, one process says it
                colour = "yellow" if isinstance(e, TrainingInterrupted) else "red"
                err.print(f"[{colour}]{'error: ' if colour == 'red' else ''}{escape(one_line(str(e)))}[/]")
            raise typer.Exit(e.exit_code) from None
        except Interrupted as e:
            if rank_zero():  # under torchrun, rank 0 says it
                err.print(f"[yellow]{escape(one_line(str(e)))}[/]")
            raise typer.Exit(e.exit_code) from None
        except AutoencError as e:
            if not isinstance(e, SharedError) or rank_zero():  # under torchrun, rank 0 says it
                err.print(f"[red]error:[/] {escape(one_line(str(e)))}")
            raise typer.Exit(1) from None
        except OSError as e:  # what no check foresaw about a file (a name too long for this system, ...): still one line
            where = f"{os.fsdecode(e.filename)}: " if e.filename is not None else ""
            err.print(f"[red]error:[/] {escape(one_line(where + (e.strerror or str(e))))}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
    return wrapper


def load_weights(weights: Optional[Path]):
    """The model and its metadata. Commands print weights_note() once their work is done, so that
    a command that fails prints nothing but its one-line error."""
    from autoenc_cli.model.weights import load_model, resolve_weights
    path = resolve_weights(weights)
    regular_file(path, "weights file")  # a FIFO would block, a device never end
    return load_model(path)


def weights_fingerprint(weights: Optional[Path]) -> dict:
    """The weights' file name and sha256, as latents, stacks and jobs record them."""
    from autoenc_cli.model.weights import fingerprint, resolve_weights
    return fingerprint(resolve_weights(weights))


def weights_note(weights: Optional[Path], meta: dict, more: str = "") -> str:
    """The weights line a command ends with; `more` goes on it (precision_note)."""
    from autoenc_cli.model.weights import channel_multiplier, default_weights_path, resolve_weights
    path = resolve_weights(weights)
    label = " (bundled default)" if path == default_weights_path() else ""
    return f"weights: {escape(str(path))}{label}, channel multiplier {channel_multiplier(meta)}{more}" + barely_trained(meta)


def barely_trained(meta: dict) -> str:
    """A warning for weights saved early in a run (their own validation said they reconstruct poorly)."""
    from autoenc_cli.model.weights import barely_trained_psnr, provenance
    prov = provenance(meta)
    psnr = barely_trained_psnr(prov)
    if psnr is None:
        return ""
    return (f"\n[yellow]warning:[/] these weights were saved at step {prov.get('steps', '?')}, when they scored "
            f"{psnr:.1f} dB on validation: barely trained, expect blurred or flat pictures")


def print_json(value) -> None:
    """One JSON object on stdout, through the console's stream (a full disk is one line, as for any output).
    ASCII: a file name that is not UTF-8 is written as \\udcXX escapes, which json.loads and os.fsencode undo."""
    out.file.write(json.dumps(value) + "\n")


def print_table(renderable) -> None:
    """Print rich tables on stdout. Rich pads every cell to its column's width, so each line of a borderless table
    ends in spaces up to the widest value: kept on a terminal (nothing shows them), stripped for a file or a pipe,
    where they would be bytes in every line."""
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    out.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def output_paths(inputs: list[Path], output: Optional[Path], suffix: str, default_suffix: str | None = None,
                 allow_existing: bool = False) -> list[Path]:
    """One input and -o FILE: that file. Several inputs, or -o an existing folder or ending in '/': DIR/<stem><suffix>.

    No -o: ./<stem><default_suffix>, and never over an existing file (the user did not name it: it may be theirs),
    unless allow_existing: an unfinished job wrote them (its own check refuses any other job)."""
    if output is None:
        distinct_stems(inputs, "the current folder")
        targets = [Path(p.stem + (default_suffix or suffix)) for p in inputs]
        for t in targets:
            if (t.exists() or t.is_symlink()) and not allow_existing:
                raise AutoencError(f"{t}: exists; not replacing a file you did not name (give -o {t} to replace it, or another -o)")
        return targets
    as_dir = len(inputs) > 1 or output.is_dir() or str(output).endswith(("/", "\\"))
    if not as_dir:
        return [output]
    distinct_stems(inputs, str(output))
    return [output / (p.stem + suffix) for p in inputs]


def distinct_stems(inputs: list[Path], where: str) -> None:
    """Refuse inputs whose outputs would take one name: the second would replace the first's."""
    stems = [p.stem for p in inputs]
    if len(set(stems)) < len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise AutoencError(f"two inputs share the name {dup!r}: their outputs in {where} would collide")


def complete_device(incomplete: str) -> list[str]:
    return [d for d in ("auto", "cpu", "cuda", "cuda:0", "mps") if d.startswith(incomplete)]


DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"
DeviceOption = Annotated[str, typer.Option(help=DEVICE_HELP, autocompletion=complete_device)]


def model_on_device(weights: Optional[Path], device: str):
    """load_weights, then the model moved to --device."""
    from autoenc_cli.model.hardware import pick_device
    model, meta = load_weights(weights)
    model.to(pick_device(device))
    return model, meta


@contextlib.contextmanager
def progress_bars():
    """Yield progress(done, total, label) drawing rich bars on stderr; the bars end with the block. The library's
    warnings (logger "autoenc") are said above the bars, each kind once."""
    from autoenc_cli.cli.progress import TrainProgress
    bars = TrainProgress(err)
    try:
        with library_warnings(WarnOnce()):
            yield bars.cache_progress
    finally:
        bars.stop()


@contextlib.contextmanager
def job_bar(label: str):
    """Yield progress(done, total) for a job over a collection: one bar, on rank 0 under torchrun (the other
    processes draw none and print nothing: rank 0 reports the whole job)."""
    from autoenc_cli.cli.progress import JobProgress
    if not rank_zero():
        with library_warnings(logging.NullHandler()):  # rank 0 says the library's warnings
            yield None
        return
    with library_warnings(WarnOnce()), JobProgress(label, err) as bar:
        yield bar


@contextlib.contextmanager
def library_warnings(handler: logging.Handler):
    """The library's warnings (logger "autoenc") go to `handler` for the block."""
    logging.getLogger("autoenc").addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger("autoenc").removeHandler(handler)


def rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


SKIPPED_SHOWN = 3  # unreadable pictures named in the final error; the rest are counted


def skipped_error(skipped: list, total: int, listed_in: Path | None = None) -> AutoencError:
    """The error a command over a folder ends with when it skipped pictures it could not read (it did all the
    others): one line naming the first few and why, and where all of them are listed."""
    reasons = "; ".join(why for _, why in skipped[:SKIPPED_SHOWN])
    more = f"; and {counted(len(skipped) - SKIPPED_SHOWN, 'more')}" if len(skipped) > SKIPPED_SHOWN else ""
    listed = f" (all listed in {listed_in})" if listed_in is not None else ""
    return AutoencError(f"skipped {len(skipped):,} of {counted(total, 'picture')}, unreadable{listed}: {reasons}{more}")


class WarnOnce(logging.Handler):
    """A library warning on stderr in one line, once per kind (its message before its values: a folder of pictures
    of one size would say it for each)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.said = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg not in self.said:
            self.said.add(record.msg)
            err.print(f"[yellow]warning:[/] {escape(one_line(record.getMessage()))}")


def outside_data(output: Path, data: Path, option: str) -> None:
    """prepare_outputs for one output of a command that reads DATA, which must not hold it (it would be read next time)."""
    prepare_outputs([], [output])
    if data.is_dir():
        refuse_inside(output, data, option)
