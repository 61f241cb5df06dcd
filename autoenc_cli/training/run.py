"""What a training run holds fixed once started (Run), what changes from step to step (LoopState), and how a run
starts: settings (the saved run's on --resume), processes, device, network, optimizer, --init weights, data.
Also validation, the pass the loop and its guard judge the network by."""

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from autoenc_cli.codec.encoding import run_network
from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.model.autoencoder import Autoencoder, init_weights, relu_slope
from autoenc_cli.model.color import from_network
from autoenc_cli.model.hardware import keep_freed_memory, pick_device, pick_precision
from autoenc_cli.model.weights import fingerprint, load_model, resolve_weights
from autoenc_cli.training.checkpoint import LOG_FILE, STATE_FILE, Log, load_state, prepare_run_folder, read_state
from autoenc_cli.training.config import DEFAULT_EPOCHS, TrainConfig, resumed_config
from autoenc_cli.data.splits import Split
from autoenc_cli.training.guard import Guard
from autoenc_cli.training.optim import adam
from autoenc_cli.data.group import setup_distributed
from autoenc_cli.training.processes import free_memory
from autoenc_cli.data.sources import Thumbnails, Windows, load_data

SAMPLE_COUNT = 16
BAR_SECONDS = 0.5  # between log windows the bar's loss and images/s are refreshed this often (the loss waits for a GPU)
SLOW_FACTOR = 3.0  # a CPU run whose windows fall this many times below its first window's rate ...
SLOW_WINDOWS = 2  # ... this many windows in a row shares its cores with other work: said once


def start_from(model: Autoencoder, cfg: TrainConfig, say) -> dict | None:
    """Load --init weights into `model` (after checking they fit); return their name and sha256, or None."""
    if not cfg.init:
        return None
    path = resolve_weights(cfg.init)
    parent, meta = load_model(path)
    if parent.channel_multiplier != cfg.channel_multiplier:
        raise AutoencError(f"{path}: --init weights have channel multiplier {parent.channel_multiplier}, "
                           f"this run --channel-multiplier {cfg.channel_multiplier}")
    if meta.get("color", "rgb") != cfg.color:
        raise AutoencError(f"{path}: --init weights use colour {meta.get('color', 'rgb')}, this run --color {cfg.color}")
    if parent.latent != cfg.latent:  # the same tensors: the other latent starts from them
        say(f"starting a {cfg.latent} latent from {path.name}'s {parent.latent} latent")
    if cfg.relu_leak and relu_slope(parent) == 0:
        say(f"[yellow]warning:[/] --relu-leak {cfg.relu_leak:g} on --init weights trained with plain ReLUs: measured to break "
            "them (0.1: 29.5 -> 15.9 dB, docs/training.md); the fine-tune recipe's leak is 0")
    model.load_state_dict(parent.state_dict())
    return fingerprint(path)


def validate(model, pixels, device, precision, batch: int = 256):
    """Mean loss (network units) and mean per-image PSNR (8-bit RGB), plus the first reconstructions: the pass
    eval takes (codec.run_network), in training's precision."""
    model.eval()
    losses, psnrs, firsts = [], [], None
    for i in range(0, len(pixels), batch):
        u8 = torch.from_numpy(np.array(pixels[i:i + batch])).to(device)
        x, y = run_network(model, u8, precision)
        losses.append(((y - x) ** 2).flatten(1).mean(1).cpu())
        out = from_network(y, model.color).permute(0, 2, 3, 1).cpu()  # PSNR always on RGB bytes
        psnrs.append(psnr_per_image(out, u8.cpu()))
        if firsts is None:
            firsts = out[:SAMPLE_COUNT].numpy()
    model.train()
    return torch.cat(losses).mean().item(), torch.cat(psnrs).mean().item(), firsts


@dataclass
class Run:
    """What a run holds fixed once started."""
    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    precision: str
    model: Autoencoder
    net: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    split: Split
    source: Thumbnails | Windows
    val_pixels: object  # N x 64 x 64 x 3 uint8 rows
    total: int  # steps
    steps_per_epoch: int
    log: Log
    parent: dict | None  # the --init weights' name and sha256

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def global_batch(self) -> int:
        return self.cfg.batch_size * self.world

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)


@dataclass
class RateWatch:
    """The log windows' images/s against the first window's: slowed() is True once, when SLOW_WINDOWS windows in a row
    ran SLOW_FACTOR times slower (on a CPU: another program is using the cores)."""
    first: float | None = None
    slow_in_a_row: int = 0
    said: bool = False

    def slowed(self, rate: float) -> bool:
        if self.first is None:
            self.first = rate
            return False
        self.slow_in_a_row = self.slow_in_a_row + 1 if rate < self.first / SLOW_FACTOR else 0
        if self.slow_in_a_row < SLOW_WINDOWS or self.said:
            return False
        self.said = True
        return True


@dataclass
class LoopState:
    """What changes from step to step; a checkpoint saves step, elapsed and the loss window."""
    step: int
    elapsed: float  # seconds inside training steps, over every start of the run (--resume included)
    window_loss: torch.Tensor  # summed on the device: reading a GPU loss every step would stall the GPU
    window_steps: int
    window_images: int = 0
    window_start: float = field(default_factory=time.monotonic)
    last_save: float = field(default_factory=time.monotonic)
    shown_loss: float = float("nan")  # the progress bar's: the last logged mean, or the window's so far
    bar_at: float = field(default_factory=time.monotonic)  # when the bar's figures were last refreshed
    rates: RateWatch = field(default_factory=RateWatch)
    val_loss: float = float("nan")
    val_psnr: float = float("nan")
    relus: list = field(default_factory=list)  # LeakyReLUs while the leak lasts
    guard: Guard = field(default_factory=Guard)  # the divergence guard: recent losses, good snapshots, rate scale
    best_psnr: float = -math.inf  # the run's best validation, and (since this process started) a copy of the model then
    best_step: int = 0
    best_model: Autoencoder | None = None
    draws_epoch: int | None = None
    draws: object = None  # this epoch's draws from the source


def start_run(cfg: TrainConfig, resume: bool, say, cache_progress, named: set[str] | None = None) -> tuple[Run, LoopState]:
    """Settings (the saved run's on --resume), processes, device, network and optimizer, data, step count."""
    cfg.check()
    rank, world = setup_distributed(cfg.device, cfg.dist_timeout)
    prepare_run_folder(Path(cfg.out), cfg.data, resume, rank == 0)
    device = pick_device(cfg.device)
    keep_freed_memory()
    torch.backends.cudnn.benchmark = device.type == "cuda"  # every batch has the same shape: pick the fastest kernels once
    state = Path(cfg.out) / STATE_FILE
    saved = read_state(state) if resume else None  # read once, checked whole, before any work
    if resume:  # the run's own settings build its network (multiplier, colour, latent), whatever the options say
        cfg, changes = resumed_config(cfg, saved[1]["config"], named)
        if changes:
            say(changes)
    torch.manual_seed(cfg.seed)
    model = Autoencoder(cfg.channel_multiplier, cfg.color, cfg.latent)
    init_weights(model)
    model.to(device, memory_format=torch.channels_last)
    optimizer = adam(model.parameters(), device, lr=0.0, betas=(0.9, 0.99))  # lr: set every step by lr_at
    info = load_state(state, model, optimizer, saved) if resume else {}
    parent = info.get("parent") if resume else start_from(model, cfg, say)
    cfg = cfg.with_recipe_defaults(device.type, world)
    cfg.check()
    cfg.epochs = DEFAULT_EPOCHS if cfg.epochs is None else cfg.epochs
    split, source, val_pixels = load_data(cfg, say if rank == 0 else (lambda *_: None), cache_progress,
                                          set() if resume else (named or set()))
    if device.type != "cpu" and source.nbytes() < 0.25 * free_memory(device):
        source.to(device)  # the whole dataset on the GPU: batches are cut there, and nothing waits for the host
    steps_per_epoch = max(1, len(source) // (cfg.batch_size * world))
    total = min(cfg.epochs * steps_per_epoch, cfg.max_steps or math.inf)
    warmup, shortened = cfg.warmup_within(total)  # saved with the run: a resumed run keeps its schedule
    cfg = replace(cfg, warmup_steps=warmup)
    if shortened:
        say(shortened)
    step = info.get("step", 0)
    run = Run(cfg, rank, world, device, pick_precision(cfg.precision, device), model,
              torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model, optimizer, split, source,
              val_pixels, total, steps_per_epoch, Log(Path(cfg.out) / LOG_FILE, resume_step=step if resume else None), parent)
    window_loss = torch.tensor(info.get("window_loss", 0.0), dtype=torch.float32, device=device)
    s = LoopState(step, info.get("elapsed_s", 0.0), window_loss, info.get("window_steps", 0))
    try:  # a fresh run's first good state is its start: where a blow-up in the first window goes back to
        s.guard = Guard.restored(info, saved[0] if resume else {}, step, model, optimizer)
    except (KeyError, ValueError, IndexError) as e:
        raise AutoencError(f"{state}: damaged training state (divergence guard: {e})") from None
    s.best_psnr, s.best_step = best_validation(run.log.rows)
    return run, s


def best_validation(rows: list[dict]) -> tuple[float, int]:
    """The best val PSNR in a run's log and its step (-inf, 0 when there is none)."""
    scored = [(float(r["val_psnr"]), int(r["step"])) for r in rows if r.get("val_psnr")]
    return max(scored, default=(-math.inf, 0), key=lambda p: p[0])


def describe(run: Run) -> str:
    """Two lines, each within 80 columns at the usual sizes: what the run trains and validates on, and how."""
    if isinstance(run.source, Windows):
        what = f"{counted(len(run.source), 'window')} of {counted(run.source.pictures, 'photo')} per epoch"
        val = counted(len(run.val_pixels), "window")
    else:
        what, val = f"{counted(len(run.source), 'image')} ({run.split.layout})", counted(len(run.val_pixels), "image")
    processes = f"{counted(run.world, 'process')} x " if run.world > 1 else ""
    return (f"training on {what}, validating on {val}\n"
            f"{run.device.type} {run.precision}, {processes}batch {run.cfg.batch_size}: {counted(run.total, 'step')} "
            f"({run.steps_per_epoch:,} per epoch), warm-up {run.cfg.warmup_steps:,}")
