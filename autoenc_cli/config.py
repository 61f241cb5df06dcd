"""Training settings: every default and range of `autoenc train` lives here (the CLI reads them from TrainConfig)."""

import math
from dataclasses import dataclass, fields, replace

from .color import check_color
from .errors import AutoencError

MAX_BATCH = 65536  # per process; far past what fits in any memory today
DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32  # per process; measured against the seed's 64 in docs/training.md
LEGACY_DEFAULTS = {"relu_leak": 0.0, "init": None, "max_zoom": None, "windows_per_photo": 64}  # a run saved before a setting existed resumes without it


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


def resumed_config(given: TrainConfig, saved: dict) -> TrainConfig:
    """The saved run's settings, but for where the data and outputs are and what the user set for the run's length."""
    saved = {**LEGACY_DEFAULTS, **saved}
    keep = {"data", "out", "device", "cache_dir"} | {k for k in ("epochs", "max_steps") if getattr(given, k) is not None}
    return TrainConfig(**{f.name: getattr(given, f.name) if f.name in keep else saved.get(f.name, getattr(given, f.name))
                          for f in fields(TrainConfig)})
