"""Training settings: every default and range of `autoenc train` lives here (the CLI reads them from TrainConfig)."""

import math
import numbers
import os
import reprlib
import typing
from dataclasses import dataclass, fields, replace

from autoenc_cli.errors import AutoencError, one_line
from autoenc_cli.model.choices import COLORS, LATENTS

MAX_BATCH = 65536  # per process; far past what fits in any memory today
DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32  # per process on a CPU (or MPS); measured against the seed's 64 in docs/training.md
CUDA_BATCH = 512  # per process on a GPU: an H100 trains 7,600 img/s at 32, 74,000 at 512, 84,000 at 2,048 (docs/benchmarks.md)
RECIPE_BATCH = 32  # the recipes' learning rates are for this global batch; others scale them by sqrt(batch / 32)
# The default warm-up: this fraction of the run's steps, at most WARMUP_CAP (a 200-step run warms up for 10 steps
# and then decays, instead of ending at its peak rate; measured in the commit that set it). An explicit
# --warmup-steps is kept to at most half of the run, so that every run's rate decays.
WARMUP_FRACTION = 0.05
WARMUP_CAP = 200
# Under torchrun, the longest wait of a healthy run is the first cache build: one process per machine decodes the
# dataset while the others wait (Tiny ImageNet's 110,000 JPEGs: minutes on a slow CPU). A peer that dies outright
# fails the others at once; this bounds the wait for one that hangs or whose machine vanished.
DIST_TIMEOUT_S = 600.0
LEGACY_DEFAULTS = {"relu_leak": 0.0, "init": None, "max_zoom": None, "windows_per_photo": 64, "rotate": False,
                   "shuffle_channels": False, "latent": "relu"}  # a run saved before a setting existed resumes without it


@dataclass
class TrainConfig:
    data: str
    out: str = "runs/autoenc"
    epochs: int | None = None  # None: 10, or the saved run's value on --resume
    max_steps: int | None = None  # stops earlier than --epochs when set; None on --resume: the saved value
    batch_size: int | None = None  # None: DEFAULT_BATCH, or CUDA_BATCH on a GPU
    lr: float | None = None  # peak; warm-up then cosine decay to zero. None: RECIPES[from scratch or fine-tune], batch-scaled
    warmup_steps: int | None = None  # None: WARMUP_FRACTION of the run's steps, at most WARMUP_CAP (warmup_within)
    grad_clip: float = 1.0
    relu_leak: float | None = None  # ReLU negative slope at step 0, annealed to exactly 0 (the seed's ReLU). None: RECIPES
    leak_until: float = 0.5  # ... by this fraction of the steps
    channel_multiplier: int = 1  # the seed's NeuronMultiplier: 1 = its network, 2 = its big network
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    cache_dir: str | None = None
    save_every: int = 500  # steps between training-state saves
    save_minutes: float = 5.0  # ... or minutes, whichever comes first
    log_every: int = 50
    fraction: float = 1.0  # of each class's training images (the seed's example: 0.2)
    color: str = "rgb"  # the network's pixel encoding: rgb or lab
    latent: str = "relu"  # relu: the seed's network; linear: no ReLU after the encoder's last convolution
    init: str | None = None  # weights file to start from ("default": the bundled weights); None: random
    windows_per_photo: int = 64  # photos of any size: random windows drawn from each photo per epoch
    max_zoom: float | None = None  # ... at zooms 1 (the photo's pixels) to this (None: the whole picture's short side)
    rotate: bool = False  # photos: windows also turned by random quarter turns
    shuffle_channels: bool = False  # photos: windows' RGB channels in a random order (colour coverage)
    dist_timeout: float = DIST_TIMEOUT_S  # under torchrun: seconds a process waits for the others before it fails

    def with_recipe_defaults(self, device_type: str = "cpu", processes: int = 1) -> "TrainConfig":
        """Settings left at None take their value for this device and the from-scratch or the fine-tuning recipe.
        The rate follows the global batch (per-process batch x processes): 8 GPUs at 512 take the rate of 4,096."""
        batch = self.batch_size or (CUDA_BATCH if device_type == "cuda" else DEFAULT_BATCH)
        recipe = dict(RECIPES["fine-tune" if self.init else "scratch"])
        lr_cap = recipe.pop("max_lr")
        recipe["lr"] = min(recipe["lr"] * math.sqrt(batch * processes / RECIPE_BATCH), lr_cap)
        return replace(self, batch_size=batch, **{k: v for k, v in recipe.items() if getattr(self, k) is None})

    def warmup_within(self, total: int) -> tuple[int, str]:
        """The warm-up steps of a run of `total` steps, and a line saying so when an explicit --warmup-steps had to
        be shortened to leave half of the run for the decay ("" otherwise)."""
        if self.warmup_steps is None:
            return min(WARMUP_CAP, round(WARMUP_FRACTION * total)), ""
        longest = total // 2
        if self.warmup_steps <= longest:
            return self.warmup_steps, ""
        return longest, (f"--warmup-steps {self.warmup_steps:,} is more than half of this run's {total:,} steps: "
                         f"warming up for {longest:,}, so that the rate decays after")

    def check(self, python: bool = False) -> None:
        """Every setting in its range; the messages name the options of `autoenc train`, or with python=True the
        arguments of autoenc_cli.train()."""
        named = (lambda name: name) if python else (lambda name: "--" + name.replace("_", "-"))
        for name, allowed in RANGES.items():
            value = getattr(self, name)
            if value is not None and not allowed.holds(value):
                raise AutoencError(f"{named(name)} must be {allowed} (got {value})")
        if self.color not in COLORS:
            raise AutoencError(f"{named('color')} {self.color!r}: use {' or '.join(COLORS)}")
        if self.latent not in LATENTS:
            raise AutoencError(f"{named('latent')} {self.latent!r}: use {' or '.join(LATENTS)}")


def typed_settings(settings: dict) -> dict:
    """train(**settings) from Python: each value of the type its TrainConfig field holds, as plain Python values (an
    int where a float goes, numpy's numbers too, a pathlib.Path for a name; never a bool for a number); TypeError in one line otherwise, before
    the comparisons of check() could raise their own."""
    hints = typing.get_type_hints(TrainConfig)
    plain = {}
    for name, value in settings.items():
        kinds = typing.get_args(hints[name]) or (hints[name],)
        kind = next((k for k in kinds if fits(value, k)), None)
        if kind is None:
            wanted = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
            raise TypeError(f"train(): {name}={one_line(reprlib.repr(value))} is {type(value).__name__}; give {wanted}")
        plain[name] = kind(value) if kind in (int, float, bool, str) else value
    return plain


def fits(value, kind: type) -> bool:
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real)
    if kind is str:
        return isinstance(value, (str, os.PathLike))  # init=, cache_dir=: a pathlib.Path is a name too
    return isinstance(value, kind)


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric setting: checked by TrainConfig.check, shown and checked by Typer (closed ends)."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself not allowed
    high_open: bool = False

    def holds(self, v) -> bool:  # NaN fails every comparison, so it is refused too
        above = self.low is None or (v > self.low if self.low_open else v >= self.low)
        below = self.high is None or (v < self.high if self.high_open else v <= self.high)
        return bool(above and below and v == v)

    def typer(self) -> dict:
        """min/max for typer.Option: the closed ends (Typer has no open ones; check() refuses those)."""
        return {k: v for k, v, is_open in (("min", self.low, self.low_open), ("max", self.high, self.high_open))
                if v is not None and not is_open}

    def __str__(self) -> str:
        if self.high in (None, INF):
            return f"{'above' if self.low_open else 'at least'} {self.low:,}" + (" (a finite number)" if self.high == INF else "")
        if self.low is not None and not self.low_open and not self.high_open:
            return f"between {self.low:,} and {self.high:,}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


INF = float("inf")
RANGES = {
    "epochs": Range(1), "max_steps": Range(1), "batch_size": Range(1, MAX_BATCH), "channel_multiplier": Range(1, 16),
    "lr": Range(0, INF, low_open=True, high_open=True), "warmup_steps": Range(0),
    "grad_clip": Range(0, INF, high_open=True), "relu_leak": Range(0, 1, high_open=True),
    "leak_until": Range(0, 1, low_open=True), "seed": Range(0, 2**32 - 1), "save_every": Range(1),
    "save_minutes": Range(0, INF, low_open=True, high_open=True), "log_every": Range(1),
    "fraction": Range(0, 1, low_open=True), "windows_per_photo": Range(1), "max_zoom": Range(1, INF, high_open=True),
    "dist_timeout": Range(1, INF, high_open=True),
}


# Measured in docs/training.md: from random weights, a high rate and leaky ReLUs early (dead channels);
# from trained plain-ReLU weights no leak (it would first undo what they learned) and half the rate: 1e-3
# beat 3e-4 on held-out photos after 2,000 steps from the bundled weights (+0.13 dB on crops, +0.14 whole).
# Both at batch 32; at batch 512 on a GPU, 1e-3 x sqrt(512 / 32) = 4e-3 beat 1e-3 (docs/training.md).
# From scratch the sqrt rule is not safe: on an H200 at batch 512, 2e-3 x sqrt(512 / 32) = 8e-3 blew up as the
# warm-up ended (loss to the +-40 clamp at step 300) while 2e-3 trained (29.09 dB after 8,000 steps).
# So a fresh network's rate grows no higher than 2e-3 with the batch (max_lr); smaller batches still scale down.
RECIPES = {
    "scratch": {"lr": 2e-3, "relu_leak": 0.5, "max_lr": 2e-3},
    "fine-tune": {"lr": 1e-3, "relu_leak": 0.0, "max_lr": math.inf},
}


# what --resume takes from the command line: where things are, and how long and how often (the trajectory stays the same)
CHANGEABLE_ON_RESUME = ("data", "out", "device", "cache_dir", "epochs", "max_steps", "save_every", "save_minutes", "log_every",
                        "dist_timeout")


def legacy_names(saved: dict) -> dict:
    """A saved run's settings under today's names (runs saved before the rename call the channel multiplier width)."""
    renamed = {"width": "channel_multiplier"}
    return {renamed.get(k, k): v for k, v in saved.items()}


def resumed_config(given: TrainConfig, saved: dict, named: set[str] | None = None) -> tuple[TrainConfig, str]:
    """The saved run's settings, but for CHANGEABLE_ON_RESUME where the user gave them; and one line that says
    which options the user named were applied and which were taken from the run instead ("" if none).

    named: the options given on the command line (None: epochs and max_steps when they are not None)."""
    saved = {**LEGACY_DEFAULTS, **legacy_names(saved)}
    named = {k for k in ("epochs", "max_steps") if getattr(given, k) is not None} if named is None else named
    keep = {"data", "out", "device", "cache_dir"} | (named & set(CHANGEABLE_ON_RESUME))
    cfg = TrainConfig(**{f.name: getattr(given, f.name) if f.name in keep else saved.get(f.name, getattr(given, f.name))
                         for f in fields(TrainConfig)})
    flag = lambda k: "--" + k.replace("_", "-")  # noqa: E731
    applied = [f"{flag(k)} {getattr(cfg, k)}" for k in sorted(named & set(CHANGEABLE_ON_RESUME) - {"data", "out"})]
    ignored = [f"{flag(k)} (the run's: {saved[k]})" for k in sorted(named - set(CHANGEABLE_ON_RESUME))
               if k in saved and saved[k] != getattr(given, k)]
    parts = ([f"applied {', '.join(applied)}"] if applied else []) + \
            ([f"kept the run's settings over {', '.join(ignored)}"] if ignored else [])
    return cfg, ("resuming: " + "; ".join(parts)) if parts else ""
