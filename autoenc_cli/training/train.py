"""The training loop: one process, or DistributedDataParallel under torchrun.

train() is a short driver. start_run() (run.py) settles everything a run holds fixed (settings, processes,
device, network, optimizer, data); then every step runs the same phases in the same order, as
nanoGPT's train.py does: the batch, the learning rate and ReLU slope, forward/backward/update, the
logged mean loss, validation and the artefacts at the end of an epoch, a checkpoint when due,
progress, and stopping. What changes from step to step lives in one LoopState, which a checkpoint
saves. Batches and their order come from sources.py; a resumed run sees what the uninterrupted run would have.
"""

import contextlib
import copy
import datetime
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from autoenc_cli import __version__
from autoenc_cli.codec.encoding import comparison_grid, save_png
from autoenc_cli.model.autoencoder import relu_slope, swap_relus
from autoenc_cli.model.hardware import autocast
from autoenc_cli.fileio import resolved
from autoenc_cli.model.weights import save_weights
from autoenc_cli.training.checkpoint import STATE_FILE, remove_if_empty, save_state
from autoenc_cli.training.config import TrainConfig
from autoenc_cli.training.guard import (FLAT_MARGIN_DB, WORSE_THAN_BEST_DB, Diverged, flat_colour_psnr,
                                       judged_against_flat_colour)
from autoenc_cli.training.plot import CURVE_FILE, write_curve
from autoenc_cli.training.processes import (StopOnInterrupt, TrainingFailed, TrainingInterrupted, known_failure,
                                            mean_over_processes, share_log_step)
from autoenc_cli.training.run import BAR_SECONDS, SAMPLE_COUNT, LoopState, Run, describe, start_run, validate

__all__ = ["Result", "TrainConfig", "TrainingFailed", "TrainingInterrupted", "train", "validate", "leak_at", "lr_at"]


@dataclass
class Result:
    step: int
    val_loss: float
    val_psnr: float
    weights: Path
    history: list = field(default_factory=list)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def leak_at(step: int, total: int, cfg: TrainConfig) -> float:
    return cfg.relu_leak * max(0.0, 1.0 - step / (cfg.leak_until * total))


def set_slope(relus: list[torch.nn.LeakyReLU], slope: float) -> None:
    for relu in relus:
        relu.negative_slope = slope


def next_batch(run: Run, s: LoopState) -> torch.Tensor:
    epoch, in_epoch = divmod(s.step, run.steps_per_epoch)
    if s.draws_epoch != epoch:
        s.draws, s.draws_epoch = run.source.epoch(run.cfg.seed, epoch, run.global_batch), epoch
    readers, reader = run.source.readers(run.rank, run.world)  # the job's processes, or on several machines this one's
    start = (in_epoch * readers + reader) * run.cfg.batch_size
    return run.source.batch(s.draws, start, run.cfg.batch_size, run.device, run.cfg.color)


def set_schedule(run: Run, s: LoopState) -> float:
    """This step's learning rate and ReLU slope (swapping the ReLU modules when the leak starts or ends)."""
    lr = lr_at(s.step, run.total, run.cfg) * s.guard.lr_scale
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    slope = leak_at(s.step, run.total, run.cfg)
    if (slope > 0) != bool(s.relus):
        s.relus = swap_relus(run.model, slope)
    set_slope(s.relus, slope)
    return lr


def optimize(run: Run, s: LoopState, x: torch.Tensor) -> None:
    """Forward, backward, clip, update; the loss is summed on the device for the next log line."""
    t0 = time.monotonic()
    with autocast(run.device, run.precision):
        y = run.net(x)
    loss = F.mse_loss(y.float(), x)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
    run.optimizer.step()
    s.step += 1
    s.elapsed += time.monotonic() - t0
    s.window_loss += loss.detach()
    s.window_steps += 1
    s.window_images += run.global_batch


def log_window(run: Run, s: LoopState, lr: float, asked: bool, save_due: bool) -> tuple[float, bool, bool, str | None]:
    """Log the mean loss since the last log (over all processes) and let the guard judge it; return the images/s of
    that window, whether any process asks to stop and any finds a timed save due (one all-reduce for the three),
    and what the guard did (None: nothing)."""
    rate = s.window_images / max(1e-9, time.monotonic() - s.window_start)
    mean_loss, any_asked, any_due = share_log_step(s.window_loss.item() / s.window_steps, asked, save_due, device=run.device)
    s.window_loss.zero_()
    s.window_steps = 0
    run.log.add(step=s.step, epoch=epoch_of(run, s), lr=f"{lr:.6g}", train_loss=f"{mean_loss:.6f}",
                images_per_s=f"{rate:.1f}", elapsed_s=f"{s.elapsed:.1f}", val_loss="", val_psnr="")
    event = s.guard.check(mean_loss, s.step, run.model, run.optimizer)  # raises Diverged when it gives up
    if event:
        run.log.add(step=s.step, event=event)
    else:
        s.shown_loss = mean_loss
    return rate, any_asked, any_due, event


def end_epoch(run: Run, s: LoopState, say) -> None:
    """Validate the network as it stands (leaky ReLUs included), then write what a user looks at."""
    s.val_loss, s.val_psnr, recon = validate(run.model, run.val_pixels, run.device, run.precision)
    run.log.add(step=s.step, epoch=epoch_of(run, s), val_loss=f"{s.val_loss:.6f}", val_psnr=f"{s.val_psnr:.3f}")
    if s.val_psnr > s.best_psnr:
        s.best_psnr, s.best_step = s.val_psnr, s.step
        s.best_model = copy.deepcopy(run.model)  # its ReLU slope with it: saved later as it was validated
    write_artefacts(run, s, recon)
    leaking = (f" (ReLU leak {relu_slope(run.model):.3f}, 0 from step "
               f"{math.ceil(run.cfg.leak_until * run.total):,})") if s.relus else ""
    say(f"epoch {epoch_of(run, s)} step {s.step}: val loss {s.val_loss:.5f}, val PSNR {s.val_psnr:.2f} dB{leaking}")


def write_artefacts(run: Run, s: LoopState, recon: np.ndarray | None = None) -> None:
    """The weights (with provenance), and with reconstructions the sample grid and the curve."""
    if recon is not None:
        originals = np.asarray(run.val_pixels[:SAMPLE_COUNT])
        save_png(comparison_grid(originals, recon), run.out / "samples" / f"step_{s.step:07d}.png")
        write_curve(run.log.rows, run.out / CURVE_FILE, title=resolved(run.out).name)  # resolve() raises on a link loop
    save_weights(run.model, run.out / "model.safetensors", provenance(run, s), run.cfg.color)


def checkpoint(run: Run, s: LoopState) -> None:
    """The log first: killed between the two, the log runs ahead and --resume trims it to the state.

    Under torchrun every process calls it at the same step: the loss summed since the last log is saved as its mean
    over the processes, which every process takes back on resume, so the next logged mean is the uninterrupted one."""
    if run.world > 1 and s.window_steps:
        s.window_loss = mean_over_processes(s.window_loss)
    if run.main:
        run.log.flush()
        guard_info, guard_tensors = s.guard.saved(s.step)  # its snapshots too: a resumed run recovers as this one would
        save_state(run.out / STATE_FILE, run.model, run.optimizer,
                   {"step": s.step, "config": asdict(run.cfg), "elapsed_s": s.elapsed, "window_loss": s.window_loss.item(),
                    "window_steps": s.window_steps, "parent": run.parent, **guard_info}, guard_tensors)
    s.last_save = time.monotonic()


def epoch_of(run: Run, s: LoopState) -> int:
    """The 1-based epoch that the last step belonged to."""
    return (s.step - 1) // run.steps_per_epoch + 1


def train(cfg: TrainConfig, resume: bool = False, say=print, progress_factory=None, named: set[str] | None = None,
          should_stop=None) -> Result:
    """Train (or continue training) an autoencoder; write log.csv, samples/, model.safetensors, state.

    named: the options the user gave (the CLI knows); on --resume they are applied or reported as ignored.
    should_stop(step) -> bool, called after every step: True stops the run as Ctrl-C does (saved, resumable)."""
    main = int(os.environ.get("RANK", "0")) == 0
    say = say if main else (lambda *_: None)
    ctx = progress_factory() if (progress_factory and main) else None
    stop, started, run = StopOnInterrupt(say), False, None  # from the start: a Ctrl-C while the data loads stops at step 1
    made_out = not Path(cfg.out).exists()
    try:
        run, s = start_run(cfg, resume, say, ctx.cache_progress if ctx else None, named)
        if resume and s.step >= run.total:
            return finished_already(run, s, say)
        if resume:
            say(f"continuing the run in {run.out} from step {s.step:,}")
        say(describe(run))
        bar = ctx.start(run.total, s.step) if ctx else None
        started = True
        while s.step < run.total:
            x = next_batch(run, s)
            lr = set_schedule(run, s)
            optimize(run, s, x)
            if after_step(run, s, lr, stop.requested or bool(should_stop and should_stop(s.step)), ctx, bar, say):
                checkpoint(run, s)
                raise TrainingInterrupted(f"interrupted at step {s.step}; state saved in {run.out / STATE_FILE}. "
                                          f"Resume with: {resume_command(run)}", stop.signum)
        return finish(run, s, resume, say)
    except Diverged as e:
        raise gave_up(run, s, e) from None
    except (RuntimeError, dist.DistError) as e:  # torch.OutOfMemoryError is a RuntimeError too
        known = known_failure(e, run.cfg if run else cfg)
        if known is None:
            raise  # a bug keeps its traceback
        raise known from None
    finally:
        stop.restore()
        if ctx:
            ctx.stop(keep=started)  # a run that failed before training leaves its one-line error alone
        if made_out and not started and main:
            remove_if_empty(Path(cfg.out))  # nor an empty --out folder
        if dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            with contextlib.suppress(RuntimeError, dist.DistError):  # a group that lost a peer may fail to close:
                dist.destroy_process_group()                        # its error, said above, is the one that counts


def after_step(run: Run, s: LoopState, lr: float, asked: bool, ctx, bar, say) -> bool:
    """Log, validate at the end of an epoch, save, show progress; True when the run must stop now (asked to, on
    this process or, under torchrun, on any: the processes agree at log steps and stop together)."""
    end_of_epoch = s.step % run.steps_per_epoch == 0 or s.step == run.total
    logged = s.step % run.cfg.log_every == 0 or end_of_epoch
    save_due = time.monotonic() - s.last_save > 60 * run.cfg.save_minutes
    rate, any_asked, any_due, event = log_window(run, s, lr, asked, save_due) if logged else (None, False, False, None)
    if event:
        say(f"[yellow]warning:[/] {event}")
    if end_of_epoch and run.main:
        end_epoch(run, s, say)
    if end_of_epoch or s.step % run.cfg.save_every == 0 or (save_due if run.world == 1 else any_due):
        checkpoint(run, s)  # under torchrun at the same steps everywhere: timed saves wait for a log step
    elif logged and run.main:
        run.log.flush_if_due()  # the row reaches log.csv now, not at the next checkpoint
    if logged:
        s.window_start, s.window_images = time.monotonic(), 0
        if run.main and run.device.type == "cpu" and s.rates.slowed(rate):
            say(busy_cpu_hint(s.rates.first, rate))
    if bar:
        show_progress(run, s, ctx, bar, rate)
    return asked if run.world == 1 else any_asked


def show_progress(run: Run, s: LoopState, ctx, bar, rate: float | None) -> None:
    """The bar's step, and its loss and images/s: a log window's, or between windows the window's so far, at most
    every BAR_SECONDS (reading the summed loss waits for a GPU to finish its queue)."""
    now = time.monotonic()
    if rate is not None:
        ctx.rate, s.bar_at = rate, now
    elif s.window_steps and now - s.bar_at >= BAR_SECONDS and now - s.window_start >= BAR_SECONDS:
        so_far = s.window_loss.item() / s.window_steps
        if math.isfinite(so_far):
            s.shown_loss = so_far
        ctx.rate, s.bar_at = s.window_images / (now - s.window_start), now
    bar(s.step, s.shown_loss, epoch_of(run, s))


def busy_cpu_hint(first: float, rate: float) -> str:
    """Said once when a CPU run slows far below its start. With one of 2 cores kept busy by another program, 50 steps
    at batch 32 trained at 22.9 img/s with OMP_NUM_THREADS=1 and 9.5 with the default 2 threads."""
    return (f"[yellow]note:[/] training fell from {first:,.0f} to {rate:,.0f} img/s: is the CPU busy with other work?\n"
            "one thread is faster on busy cores: Ctrl-C, then OMP_NUM_THREADS=1 ... --resume")


def finish(run: Run, s: LoopState, resume: bool, say) -> Result:
    if run.world > 1:
        dist.barrier()  # the others wait for rank 0's last validation and saves: all leave together
    if resume and run.main and not (run.out / "model.safetensors").exists():
        write_artefacts(run, s)
    if run.main and s.val_psnr < s.best_psnr - WORSE_THAN_BEST_DB:
        raise ended_below_best(run, s)
    if run.main:
        against_flat_colour(run, s, say)
    return Result(s.step, s.val_loss, s.val_psnr, run.out / "model.safetensors", run.log.rows)


def against_flat_colour(run: Run, s: LoopState, say) -> None:
    """A run that ends no better than a flat colour per picture learnt nothing, when it was long enough to tell
    (guard.py); a shorter one is finished and said to be short: more steps, not another rate, is what it needs."""
    flat = flat_colour_psnr(run.val_pixels)
    if not s.val_psnr < flat + FLAT_MARGIN_DB:
        return
    where = f"after {s.step:,} steps the model is no better than a flat colour per picture (val PSNR {s.val_psnr:.2f} dB against {flat:.2f})"
    if judged_against_flat_colour(s.step, run.cfg.warmup_steps):
        raise TrainingFailed(f"training failed: {where}; try another --lr (this run: {run.cfg.lr:.3g}; too high, it "
                             "blows up, too low, it learns nothing)")
    say(f"[yellow]note:[/] {where}: a run this short is too short to judge, and more steps will help (a larger "
        "--epochs or --max-steps)")


def gave_up(run: Run, s: LoopState, e: Diverged) -> TrainingFailed:
    """The guard's last word: the model holds the last good weights again; save them (and the log) and say why."""
    if run.main:
        run.log.add(step=s.step, event=f"stopped: diverging again ({e.why}); weights of step {e.good_step} kept")
        run.log.flush()
        s.val_loss, s.val_psnr, _ = validate(run.model, run.val_pixels, run.device, run.precision)
        write_artefacts(run, s)
    return TrainingFailed(f"training diverged at step {e.step} ({e.why}) after {e.recoveries} recoveries at ever lower "
                        f"rates; the last good weights (step {e.good_step}, val PSNR {s.val_psnr:.2f} dB) are in "
                        f"{run.out / 'model.safetensors'}; try a lower --lr (this run: {run.cfg.lr:.3g})")


def ended_below_best(run: Run, s: LoopState) -> TrainingFailed:
    """A run whose last validation is well below its best did not end well: keep the best weights beside the last."""
    kept = ""
    if s.best_model is not None:
        save_weights(s.best_model, run.out / "best.safetensors", {**provenance(run, s), "steps": s.best_step,
                                                           "val_psnr": round(s.best_psnr, 3)}, run.cfg.color)
        kept = f"; its weights of step {s.best_step} are in {run.out / 'best.safetensors'}"
    return TrainingFailed(f"the run ended at val PSNR {s.val_psnr:.2f} dB, {s.best_psnr - s.val_psnr:.2f} dB below its "
                        f"best ({s.best_psnr:.2f} dB at step {s.best_step}){kept}; try a lower --lr (this run: "
                        f"{run.cfg.lr:.3g})")


def resume_command(run: Run) -> str:
    if run.world > 1:
        return "the same torchrun command with --resume"
    where = (f" --cache-dir {run.cfg.cache_dir}" if run.cfg.cache_dir else "") + \
            (f" --device {run.cfg.device}" if run.cfg.device != "auto" else "")
    return f"autoenc train {run.cfg.data} --out {run.cfg.out}{where} --resume"


def finished_already(run: Run, s: LoopState, say) -> Result:
    """--resume on a run that has done all its steps: say so, and report its last validation."""
    last = next((r for r in reversed(run.log.rows) if r.get("val_psnr")), {})
    s.val_loss, s.val_psnr = float(last.get("val_loss") or "nan"), float(last.get("val_psnr") or "nan")
    say(f"{run.out}: this run has finished ({s.step:,} of {run.total:,} steps); "
        "give a larger --max-steps or --epochs to train it further")
    return Result(s.step, s.val_loss, s.val_psnr, run.out / "model.safetensors", run.log.rows)


def provenance(run: Run, s: LoopState) -> dict:
    cfg, split, n, step, precision, world, val_psnr, parent = (run.cfg, run.split, len(run.source), s.step, run.precision,
                                                               run.world, s.val_psnr, run.parent)
    return {
        "data": os.path.abspath(cfg.data), "layout": split.layout, "train_images": n, "steps": step,
        "batch_size": cfg.batch_size * world, "lr": cfg.lr, "warmup_steps": cfg.warmup_steps, "seed": cfg.seed,
        "relu_leak": cfg.relu_leak, "leak_until": cfg.leak_until,
        "fraction": cfg.fraction, "color": cfg.color, "latent": cfg.latent, "parent": parent,
        "windows_per_photo": cfg.windows_per_photo if split.layout == "folder" else None, "max_zoom": cfg.max_zoom,
        "rotate": cfg.rotate, "shuffle_channels": cfg.shuffle_channels,
        "precision": precision, "processes": world, "val_psnr": round(val_psnr, 3),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "autoenc_version": __version__,
    }
