"""The training loop: one process, or DistributedDataParallel under torchrun.

Data order: each epoch draws one permutation and one set of flips from a generator seeded
by (seed, epoch). Global batch b of an epoch is the slice [b*B*W, (b+1)*B*W) of that
permutation (B per process, W processes), and rank r takes its r-th part: so W processes
at batch B see exactly the images of one process at batch B*W, and a resumed run sees
exactly what the uninterrupted run would have.
"""

import datetime
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import __version__
from .checkpoint import LOG_FILE, STATE_FILE, Log, load_state, save_state
from .codec import comparison_grid, save_png
from .color import check_color, from_network, to_network
from .data import all_thumbnails, cached_images, class_fraction, split_dataset
from .errors import AutoencError
from .fileio import ensure_dir, remove_stale_temps
from .hardware import autocast, keep_freed_memory, pick_device, pick_precision
from .metrics import psnr_per_image
from .model import Autoencoder, init_weights, relu_slope, swap_relus
from .optim import adam
from .photos import Photos, WindowDraws, cached_photos, draw_windows, fixed_windows, window_batch
from .plot import CURVE_FILE, write_curve
from .weights import fingerprint, load_model, resolve_weights, save_weights

SAMPLE_COUNT = 16
MAX_BATCH = 65536  # per process; far past what fits in any memory today
DEFAULT_EPOCHS = 10
LEGACY_DEFAULTS = {"relu_leak": 0.0, "init": None, "max_zoom": None, "windows_per_photo": 64}  # a run saved before a setting existed resumes without it
DEFAULT_BATCH = 32  # per process; measured against the seed's 64 in docs/training.md
VAL_WINDOWS_PER_PHOTO = 8  # fixed windows cut from each validation photo


@dataclass
class TrainConfig:
    data: str
    out: str = "runs/autoenc"
    epochs: int | None = None  # None: 10, or the saved run's value on --resume
    max_steps: int | None = None  # stops earlier than --epochs when set; None on --resume: the saved value
    batch_size: int = DEFAULT_BATCH
    lr: float | None = None  # peak; warm-up then cosine decay to zero. None: RECIPES[from scratch or fine-tune]
    warmup_steps: int = 200
    grad_clip: float = 1.0
    relu_leak: float | None = None  # ReLU negative slope at step 0, annealed to exactly 0 (the seed's ReLU). None: RECIPES
    leak_until: float = 0.5  # ... by this fraction of the steps
    width: int = 1
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    cache_dir: str | None = None
    save_every: int = 500  # steps between training-state saves
    save_minutes: float = 5.0  # ... or minutes, whichever comes first
    log_every: int = 50
    fraction: float = 1.0  # of each class's training images (the seed's example: 0.2)
    color: str = "rgb"  # the network's pixel encoding: rgb or lab
    init: str | None = None  # weights file to start from ("default": the bundled weights); None: random
    windows_per_photo: int = 64  # photos of any size: random windows drawn from each photo per epoch
    max_zoom: float | None = None  # ... at zooms 1 (the photo's pixels) to this (None: the whole picture's short side)

    def with_recipe_defaults(self) -> "TrainConfig":
        """Settings left at None take the from-scratch or the fine-tuning recipe's value."""
        recipe = RECIPES["fine-tune" if self.init else "scratch"]
        return replace(self, **{k: v for k, v in recipe.items() if getattr(self, k) is None})

    def check(self) -> None:
        for name in ("epochs", "batch_size", "width", "save_every", "log_every"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise AutoencError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.max_steps is not None and self.max_steps < 1:
            raise AutoencError(f"--max-steps must be at least 1 (got {self.max_steps})")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise AutoencError(f"--lr must be a positive number (got {self.lr})")
        if self.warmup_steps < 0:
            raise AutoencError(f"--warmup-steps must be at least 0 (got {self.warmup_steps})")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise AutoencError(f"--grad-clip must be a number >= 0 (got {self.grad_clip})")
        if self.relu_leak is not None and not (0 <= self.relu_leak < 1):
            raise AutoencError(f"--relu-leak must be in [0, 1) (got {self.relu_leak})")
        if not (0 < self.leak_until <= 1):
            raise AutoencError(f"--leak-until must be in (0, 1] (got {self.leak_until})")
        if not self.save_minutes > 0:  # also refuses nan
            raise AutoencError(f"--save-minutes must be a positive number (got {self.save_minutes})")
        if self.width > 16:
            raise AutoencError(f"--width must be between 1 and 16 (got {self.width})")
        if self.batch_size > MAX_BATCH:
            raise AutoencError(f"--batch-size must be at most {MAX_BATCH:,} (got {self.batch_size})")
        if not 0 <= self.seed < 2**32:
            raise AutoencError(f"--seed must be between 0 and {2**32 - 1} (got {self.seed})")
        if not 0 < self.fraction <= 1:
            raise AutoencError(f"--fraction must be in (0, 1] (got {self.fraction})")
        if self.windows_per_photo < 1:
            raise AutoencError(f"--windows-per-photo must be at least 1 (got {self.windows_per_photo})")
        if self.max_zoom is not None and not (math.isfinite(self.max_zoom) and self.max_zoom >= 1):
            raise AutoencError(f"--max-zoom must be a number >= 1 (got {self.max_zoom})")
        check_color(self.color)


# Measured in docs/training.md: from random weights, a high rate and leaky ReLUs early (dead channels);
# from trained plain-ReLU weights, a lower rate and no leak (a leak would first undo what they learned).
RECIPES = {
    "scratch": {"lr": 2e-3, "relu_leak": 0.5},
    "fine-tune": {"lr": 3e-4, "relu_leak": 0.0},
}


def start_from(model: Autoencoder, cfg: TrainConfig) -> dict | None:
    """Load --init weights into `model` (after checking they fit); return their name and sha256, or None."""
    if not cfg.init:
        return None
    path = resolve_weights(None if cfg.init == "default" else Path(cfg.init))
    parent, meta = load_model(path)
    if parent.width != cfg.width:
        raise AutoencError(f"{path}: --init weights have width {parent.width}, this run --width {cfg.width}")
    if meta.get("color", "rgb") != cfg.color:
        raise AutoencError(f"{path}: --init weights use colour {meta.get('color', 'rgb')}, this run --color {cfg.color}")
    model.load_state_dict(parent.state_dict())
    return fingerprint(path)


class TrainingInterrupted(AutoencError):
    """Ctrl-C: the state was saved; the message says how to resume."""


@dataclass
class Result:
    step: int
    val_loss: float
    val_psnr: float
    weights: Path
    history: list = field(default_factory=list)


class StopOnInterrupt:
    """The first Ctrl-C (or SIGTERM) asks the loop to stop after the current step (and save); a second one aborts."""

    def __init__(self, say):
        self.requested = False
        self.previous = {}
        self.say = say
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.say("[yellow]stopping soon to save the state (Ctrl-C again to abort without saving)[/]")

    def restore(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


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


def epoch_order(seed: int, epoch: int, n: int, global_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This epoch's image order (at least one global batch long) and per-position flips."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(-(-global_batch // n))])
    flips = torch.rand(len(order), generator=g) < 0.5
    return order, flips


def make_batch(pixels, order, flips, start: int, size: int, device, color: str = "rgb") -> torch.Tensor:
    """uint8 N x 64 x 64 x 3 rows -> a float channels_last batch in the network's encoding."""
    idx, flip = order[start:start + size], flips[start:start + size]
    if isinstance(pixels, torch.Tensor):  # the whole dataset already lives on the device
        x = pixels[idx.to(pixels.device)]
    else:
        x = torch.from_numpy(pixels[idx.numpy()]).to(device, non_blocking=True)
    flip = flip.to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(2), x)
    return to_network(x.permute(0, 3, 1, 2), color)  # NHWC storage == NCHW channels_last


class Thumbnails:
    """64x64 pictures (Tiny ImageNet, a folder of thumbnails): each epoch is one permutation of them."""

    def __init__(self, pixels):
        self.pixels = pixels

    def __len__(self) -> int:
        return len(self.pixels)

    def epoch(self, seed: int, epoch: int, global_batch: int):
        return epoch_order(seed, epoch, len(self.pixels), global_batch)

    def batch(self, draws, start: int, size: int, device, color: str) -> torch.Tensor:
        order, flips = draws
        return make_batch(self.pixels, order, flips, start, size, device, color)


class Windows:
    """Photographs of any size: each epoch draws `per_photo` random windows from each (photos.py)."""

    def __init__(self, photos: Photos, per_photo: int, max_zoom: float | None):
        self.photos, self.per_photo, self.max_zoom = photos, per_photo, max_zoom

    def __len__(self) -> int:
        return len(self.photos) * self.per_photo

    def epoch(self, seed: int, epoch: int, global_batch: int) -> WindowDraws:
        return draw_windows(seed, epoch, len(self.photos), max(len(self), global_batch))

    def batch(self, draws: WindowDraws, start: int, size: int, device, color: str) -> torch.Tensor:
        x = window_batch(self.photos, draws, start, size, self.max_zoom).to(device, non_blocking=True)
        return to_network(x.permute(0, 3, 1, 2), color)


@torch.no_grad()
def validate(model, pixels, device, precision, color: str = "rgb", batch: int = 256):
    """Mean loss (network units) and mean per-image PSNR (8-bit), plus the first reconstructions."""
    model.eval()
    losses, psnrs, firsts = [], [], None
    for i in range(0, len(pixels), batch):
        u8 = torch.from_numpy(np.array(pixels[i:i + batch])).to(device)
        x = to_network(u8.permute(0, 3, 1, 2), color)
        with autocast(device, precision):
            y = model(x).float()
        losses.append(((y - x) ** 2).flatten(1).mean(1).cpu())
        out = from_network(y, color).permute(0, 2, 3, 1).cpu()  # PSNR always on RGB bytes
        psnrs.append(psnr_per_image(out, u8.cpu()))
        if firsts is None:
            firsts = out[:SAMPLE_COUNT].numpy()
    model.train()
    return torch.cat(losses).mean().item(), torch.cat(psnrs).mean().item(), firsts


def setup_distributed(device_name: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and device_name in ("auto", "cuda")
        if use_nccl:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_nccl else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def load_data(cfg: TrainConfig, say, progress):
    """(split, training source, validation pixels): thumbnails as they are, or windows of photographs."""
    first_here = int(os.environ.get("LOCAL_RANK", "0")) == 0
    if dist.is_initialized() and not first_here:
        dist.barrier()  # one process per machine decodes the dataset into the cache, then the others read it
    split = split_dataset(cfg.data)
    files = class_fraction(split.train, cfg.fraction, cfg.seed, split.layout)
    if split.layout == "folder" and not all_thumbnails(files):
        source, val_pixels, skipped = load_photos(files, split.val, cfg, progress)
    else:
        source, val_pixels, skipped = load_thumbnails(files, split.val, cfg, progress)
    if skipped:
        say(f"[yellow]warning:[/] skipped {skipped} unreadable image file(s) in {cfg.data}")
    if dist.is_initialized() and first_here:
        dist.barrier()
    return split, source, val_pixels


def load_thumbnails(files, val_files, cfg: TrainConfig, progress):
    train = cached_images(files, cfg.cache_dir, progress, "decoding train images")
    val = cached_images(val_files, cfg.cache_dir, progress, "decoding val images") if val_files else None
    if len(train.pixels) == 0:
        raise AutoencError(f"{cfg.data}: none of the {len(files)} training image files could be read")
    if val is None or len(val.pixels) == 0:
        val_pixels = train.pixels[-min(len(train.pixels), 256):]
    else:
        val_pixels = val.pixels
    return Thumbnails(train.pixels), val_pixels, train.skipped + (val.skipped if val else 0)


def load_photos(files, val_files, cfg: TrainConfig, progress):
    train = cached_photos(files, cfg.cache_dir, progress, "decoding train photos")
    val = cached_photos(val_files, cfg.cache_dir, progress, "decoding val photos") if val_files else None
    if len(train) == 0:
        raise AutoencError(f"{cfg.data}: none of the {len(files)} training image files could be read")
    val_pixels = fixed_windows(val if val is not None and len(val) else train, VAL_WINDOWS_PER_PHOTO, cfg.max_zoom)
    return Windows(train, cfg.windows_per_photo, cfg.max_zoom), val_pixels, train.skipped + (val.skipped if val else 0)


def prepare_run_folder(out: Path, data: str, resume: bool, main: bool) -> None:
    """Fail before any work if --out cannot be made, and never start a fresh run over a saved one."""
    if out.resolve().is_relative_to(Path(data).resolve()):  # its samples would become training images
        raise AutoencError(f"{out}: is inside the dataset {data}; give an --out outside it")
    if not resume:  # (resuming, load_state says so if there is nothing to resume)
        if (out / STATE_FILE).exists():
            raise AutoencError(f"{out}: holds a training run already ({STATE_FILE}); continue it with --resume, "
                               "or give another --out (or delete the folder) to start afresh")
        ensure_dir(out)
    if main:
        remove_stale_temps(out)
        remove_stale_temps(out / "samples")


def train(cfg: TrainConfig, resume: bool = False, say=print, progress_factory=None) -> Result:
    """Train (or continue training) an autoencoder; write log.csv, samples/, model.safetensors, state."""
    cfg.check()
    rank, world = setup_distributed(cfg.device)
    main = rank == 0
    out = Path(cfg.out)
    state_path = out / STATE_FILE
    prepare_run_folder(out, cfg.data, resume, main)
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.precision, device)
    keep_freed_memory()

    torch.manual_seed(cfg.seed)
    model = Autoencoder(cfg.width)
    init_weights(model)
    model.to(device, memory_format=torch.channels_last)
    optimizer = adam(model.parameters(), device, lr=0.0, betas=(0.9, 0.99))  # lr: set every step by lr_at
    step, info = 0, {}
    if resume:
        info = load_state(state_path, model, optimizer)
        step = info["step"]
        parent = info.get("parent")
        saved = {**LEGACY_DEFAULTS, **info["config"]}
        given = {"data", "out", "device", "cache_dir"} | {k for k in ("epochs", "max_steps") if getattr(cfg, k) is not None}
        cfg = TrainConfig(**{f.name: getattr(cfg, f.name) if f.name in given else saved.get(f.name, getattr(cfg, f.name))
                             for f in fields(TrainConfig)})  # the rest comes from the saved run
        precision = pick_precision(cfg.precision, device)
    else:
        parent = start_from(model, cfg)
    cfg = cfg.with_recipe_defaults()
    cfg.check()
    if cfg.epochs is None:
        cfg.epochs = DEFAULT_EPOCHS

    ctx = progress_factory() if (progress_factory and main) else None
    cache_progress = ctx.cache_progress if ctx else None
    split, source, val_pixels = load_data(cfg, say if main else (lambda *_: None), cache_progress)
    if isinstance(source, Thumbnails) and device.type != "cpu" and source.pixels.nbytes < 0.25 * _free_memory(device):
        source.pixels = torch.from_numpy(np.ascontiguousarray(source.pixels)).to(device)  # whole dataset on the GPU
    n = len(source)
    global_batch = cfg.batch_size * world
    steps_per_epoch = max(1, n // global_batch)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    if main:
        what = f"{n} windows of {len(source.photos)} photos per epoch" if isinstance(source, Windows) else f"{n} images"
        say(f"training on {what} ({split.layout}), validating on {len(val_pixels)}; {device.type} {precision}, "
            f"{world} process(es) x batch {cfg.batch_size}, {total} steps ({steps_per_epoch} per epoch)")

    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    log = Log(out / LOG_FILE, resume_step=step if resume else None)
    elapsed = info.get("elapsed_s", 0.0)
    window_steps = info.get("window_steps", 0)
    # summed on the device: reading a GPU loss every step would stall the GPU until it finished the step
    window_loss = torch.tensor(info.get("window_loss", 0.0), dtype=torch.float32, device=device)
    shown_loss = float("nan")  # the progress bar's: the last logged mean
    val_loss = val_psnr = float("nan")
    relus = []  # LeakyReLUs while the leak lasts
    result_weights = out / "model.safetensors"

    def checkpoint():
        if main:  # the log first: killed between the two, the log runs ahead and --resume trims it to the state
            log.flush()
            save_state(state_path, model, optimizer, {"step": step, "config": asdict(cfg), "elapsed_s": elapsed,
                                                      "window_loss": window_loss.item(), "window_steps": window_steps,
                                                      "parent": parent})

    order_epoch, draws = None, None
    last_save, window_start, window_images = time.monotonic(), time.monotonic(), 0
    bar = ctx.start(total, step) if ctx else None
    stop = StopOnInterrupt(say if main else (lambda *_: None))
    try:
        while step < total:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            if order_epoch != epoch:
                draws = source.epoch(cfg.seed, epoch, global_batch)
                order_epoch = epoch
            x = source.batch(draws, in_epoch * global_batch + rank * cfg.batch_size, cfg.batch_size, device, cfg.color)
            lr = lr_at(step, total, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            slope = leak_at(step, total, cfg)
            if (slope > 0) != bool(relus):
                relus = swap_relus(model, slope)
            set_slope(relus, slope)
            t0 = time.monotonic()
            with autocast(device, precision):
                y = net(x)
            loss = F.mse_loss(y.float(), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            elapsed += time.monotonic() - t0
            window_loss += loss.detach()
            window_steps += 1
            window_images += global_batch
            end_of_epoch = step % steps_per_epoch == 0 or step == total
            logged = step % cfg.log_every == 0 or end_of_epoch
            if logged:
                rate = window_images / max(1e-9, time.monotonic() - window_start)
                mean_loss = _mean_over_processes(window_loss.item() / window_steps, device)
                if not math.isfinite(mean_loss):
                    raise AutoencError(f"training diverged before step {step} (loss {mean_loss}); try a lower --lr")
                shown_loss = mean_loss
                log.add(step=step, epoch=epoch + 1, lr=f"{lr:.6g}", train_loss=f"{mean_loss:.6f}",
                        images_per_s=f"{rate:.1f}", elapsed_s=f"{elapsed:.1f}", val_loss="", val_psnr="")
                window_loss.zero_()
                window_steps = 0
                if ctx:
                    ctx.rate = rate
            if end_of_epoch:
                if main:
                    val_loss, val_psnr, recon = validate(model, val_pixels, device, precision, cfg.color)
                    log.add(step=step, epoch=epoch + 1, val_loss=f"{val_loss:.6f}", val_psnr=f"{val_psnr:.3f}")
                    originals = np.asarray(val_pixels[:SAMPLE_COUNT])
                    save_png(comparison_grid(originals, recon), out / "samples" / f"step_{step:07d}.png")
                    write_curve(log.rows, out / CURVE_FILE, title=out.resolve().name)
                    save_weights(model, result_weights, _provenance(cfg, split, n, step, precision, world, val_psnr, parent), cfg.color)
                    leaking = (f" (leaky ReLUs, slope {relu_slope(model):.3f}, as saved; plain ReLUs from step "
                               f"{math.ceil(cfg.leak_until * total):,})") if relus else ""
                    say(f"epoch {epoch + 1} step {step}: val loss {val_loss:.5f}, val PSNR {val_psnr:.2f} dB{leaking}")
            if end_of_epoch or step % cfg.save_every == 0 or time.monotonic() - last_save > 60 * cfg.save_minutes:
                checkpoint()
                last_save = time.monotonic()
            if logged:
                window_start, window_images = time.monotonic(), 0
            if bar:
                bar(step, shown_loss, epoch + 1)
            # under torchrun the processes agree at log steps (the same steps everywhere) and stop together
            if (stop.requested and world == 1) or (world > 1 and logged and _any_process(stop.requested, device)):
                checkpoint()
                again = ("the same torchrun command with --resume" if world > 1 else
                         f"autoenc train {cfg.data} --out {cfg.out} --resume")
                raise TrainingInterrupted(f"interrupted at step {step}; state saved in {state_path}. Resume with: {again}")
        if world > 1:
            dist.barrier()  # the others wait for rank 0's last validation and saves: all leave together
    except torch.OutOfMemoryError:
        raise AutoencError(f"out of {device.type} memory at --batch-size {cfg.batch_size} (width {cfg.width}); "
                           "try a smaller --batch-size") from None
    finally:
        stop.restore()
        if ctx:
            ctx.stop()
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    if resume and not result_weights.exists() and main:
        save_weights(model, result_weights, _provenance(cfg, split, n, step, precision, world, val_psnr, parent), cfg.color)
    return Result(step, val_loss, val_psnr, result_weights, log.rows)


def _free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return 0


def _any_process(flag: bool, device: torch.device) -> bool:
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item() > 0


def _mean_over_processes(value: float, device: torch.device) -> float:
    """The logged loss is the whole global batch's, as one process at batch B*W would log it."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def _provenance(cfg, split, n, step, precision, world, val_psnr, parent) -> dict:
    return {
        "data": os.path.abspath(cfg.data), "layout": split.layout, "train_images": n, "steps": step,
        "batch_size": cfg.batch_size * world, "lr": cfg.lr, "warmup_steps": cfg.warmup_steps, "seed": cfg.seed,
        "relu_leak": cfg.relu_leak, "leak_until": cfg.leak_until,
        "fraction": cfg.fraction, "color": cfg.color, "parent": parent,
        "windows_per_photo": cfg.windows_per_photo if split.layout == "folder" else None, "max_zoom": cfg.max_zoom,
        "precision": precision, "processes": world, "val_psnr": round(val_psnr, 3),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "autoenc_version": __version__,
    }
