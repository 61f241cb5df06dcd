"""The divergence guard: a run that blows up is put back on its feet, or stopped; never finished as "done".

At every log step (every 50 steps, and at each epoch's end) the mean training loss of the steps since the last one
is judged. It is bad when it is
- not finite;
- above BROKEN_LOSS: pictures span [-2, 2) in network units, so no picture-like output is that far off; outputs
  pinned at the decoder's +-40 clamp give about 1,600 (seen on an H200 at lr 8e-3, and on a CPU at --lr 0.05);
- above SPIKE_FACTOR times the median of the last MEDIAN_WINDOWS judged windows.

A healthy window's weights and optimizer state are kept in memory (the two newest: the newer may already be on its
way up when the next window shows the spike), and in the training state with the recent losses, the rate's scale and
the count (Guard.saved), so that a resumed run takes the decisions the uninterrupted one would. A bad window brings back the older, halves the learning rate for the
rest of the schedule, and training goes on with the next batches, skipping those around the spike, as PaLM does.
After MAX_RECOVERIES the run stops, with the last good weights saved and an error that names --lr. Under torchrun
the judged loss is the mean over all processes (share_log_step), so every process takes the same decision.

Cost: one copy of the weights and Adam's two moments per log step (7 MB at the seed's size), measured in
benchmarks/guard_cost.py against the steps it guards; in state.safetensors, the snapshots that are not the weights
being saved: one at a save on a log step (the state doubles, 7.2 -> 14.4 MB at the seed's size), two at a save between
log steps (a timed save, Ctrl-C).
"""

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.training.checkpoint import named_tensors

BROKEN_LOSS = 100.0
SPIKE_FACTOR = 4.0
MEDIAN_WINDOWS = 8
MAX_RECOVERIES = 3
LR_CUT = 0.5  # the learning rate's factor at each recovery
WORSE_THAN_BEST_DB = 0.5  # a run whose last validation is this far below its best did not finish well
# A run that ends within this much of each validation picture replaced by its own mean colour learnt nothing: seen
# at --lr 0.05 on a CPU (13.9 dB against a healthy run's 22.0, after 300 steps, with no spike to catch). Judged only
# on runs long enough to have left that level: FLAT_CHECK_STEPS in all, and FLAT_CHECK_AFTER_WARMUP past the
# warm-up. How soon a healthy run leaves it depends on the pictures, the run's length (its schedule) and the CPU: on
# 64x64 crops of photographs (flat colour 16.3 dB, the margin's edge 17.3) a run of 427 steps was at 19.2 dB at step
# 122 and 20.2 at step 305, while runs of 122 steps (2 epochs at --fraction 0.2, the recipe's rate, bf16) ended at
# 18.0 dB on an Intel Xeon and below 17.3 on an AMD EPYC. A shorter run that ends there is said to be short
# (train.py, against_flat_colour), not failed: nothing says its rate is wrong.
FLAT_MARGIN_DB = 1.0
FLAT_CHECK_STEPS = 300
FLAT_CHECK_AFTER_WARMUP = 100


def judged_against_flat_colour(steps: int, warmup_steps: int) -> bool:
    """Whether a run of this many steps is long enough for an ending no better than a flat colour to mean failure."""
    return steps >= max(FLAT_CHECK_STEPS, warmup_steps + FLAT_CHECK_AFTER_WARMUP)


def flat_colour_psnr(pixels, batch: int = 1024) -> float:
    """Mean PSNR of N x H x W x 3 uint8 pictures against each one filled with its own mean colour: what a network
    that learnt nothing but the average reaches."""
    scores = []
    for i in range(0, len(pixels), batch):
        u8 = torch.from_numpy(np.asarray(pixels[i:i + batch]))
        flat = u8.float().mean((1, 2), keepdim=True).round().expand_as(u8)
        scores.append(psnr_per_image(flat, u8))
    return torch.cat(scores).mean().item() if scores else float("nan")


def judge(loss: float, recent: list[float]) -> str | None:
    """Why a window's mean loss shows a run going wrong, or None when it looks healthy."""
    if not math.isfinite(loss):
        return f"loss {loss}"
    if loss > BROKEN_LOSS:
        return f"loss {loss:,.1f}: outputs far outside any picture"
    if len(recent) >= 2 and loss > SPIKE_FACTOR * statistics.median(recent):
        return f"loss {loss:.4g}, {loss / statistics.median(recent):.0f}x the median of the last {len(recent)} logs"
    return None


@dataclass
class Snapshot:
    """The weights (and buffers) and the optimizer's state at one step, copied on the device."""
    step: int
    model: list[torch.Tensor]
    optimizer: dict

    @classmethod
    def take(cls, step: int, model: torch.nn.Module, optimizer) -> "Snapshot":
        with torch.no_grad():
            weights = [t.detach().clone() for t in model.state_dict().values()]
            slots = {i: {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
                     for i, p in enumerate(parameters(optimizer)) if p in optimizer.state}
        return cls(step, weights, slots)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The snapshot as named CPU tensors for a training state: PREFIXmodel.J, PREFIXopt.INDEX.KEY."""
        return named_tensors(prefix, dict(enumerate(self.model)), self.optimizer)

    @classmethod
    def from_tensors(cls, step: int, prefix: str, tensors: dict, model: torch.nn.Module, optimizer) -> "Snapshot":
        """A snapshot read back from tensors(prefix), on the model's device and in its parameters' memory layout (fused
        Adam walks a parameter and its moments in memory order). KeyError or ValueError when one is missing or misfits."""
        weights = []
        for j, current in enumerate(model.state_dict().values()):
            saved = tensors[f"{prefix}model.{j}"]
            if saved.shape != current.shape:
                raise ValueError(f"{prefix}model.{j} has shape {tuple(saved.shape)}, the network {tuple(current.shape)}")
            weights.append(saved.to(current.device, current.dtype))
        params, slots = parameters(optimizer), {}
        for name, value in tensors.items():
            if name.startswith(prefix + "opt."):
                index, key = name[len(prefix) + 4:].split(".", 1)
                p = params[int(index)]
                slots.setdefault(int(index), {})[key] = (torch.empty_like(p, dtype=value.dtype).copy_(value)
                                                         if value.shape == p.shape else value.to(p.device))
        return cls(step, weights, slots)

    def restore(self, model: torch.nn.Module, optimizer) -> None:
        with torch.no_grad():
            for t, saved in zip(model.state_dict().values(), self.model):
                t.copy_(saved)
            optimizer.state.clear()
            for i, p in enumerate(parameters(optimizer)):
                if i in self.optimizer:
                    optimizer.state[p] = {k: v.clone() if torch.is_tensor(v) else v for k, v in self.optimizer[i].items()}


def parameters(optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


@dataclass
class Guard:
    """Recent losses and the last good snapshots of one run; recoveries and the rate's scale are saved with it."""
    recent: deque = field(default_factory=lambda: deque(maxlen=MEDIAN_WINDOWS))
    good: deque = field(default_factory=lambda: deque(maxlen=2))
    lr_scale: float = 1.0
    recoveries: int = 0

    def keep(self, step: int, model: torch.nn.Module, optimizer) -> None:
        self.good.append(Snapshot.take(step, model, optimizer))

    def check(self, loss: float, step: int, model: torch.nn.Module, optimizer) -> str | None:
        """Judge a logged window: keep a snapshot when healthy (None); when not, restore the older good snapshot,
        cut the rate and return what happened, for the log and the user. Raises Diverged after MAX_RECOVERIES."""
        why = judge(loss, list(self.recent))
        if why is None:
            self.recent.append(loss)
            self.keep(step, model, optimizer)
            return None
        back_to = self.good[0]
        back_to.restore(model, optimizer)
        self.good = deque([back_to], maxlen=2)
        self.recoveries += 1
        if self.recoveries > MAX_RECOVERIES:
            raise Diverged(why, step, back_to.step, self.recoveries - 1)
        self.lr_scale *= LR_CUT
        return (f"diverging at step {step} ({why}): back to the weights of step {back_to.step}, learning rate x "
                f"{self.lr_scale:g} from here")

    def saved(self, step: int) -> tuple[dict, dict[str, torch.Tensor]]:
        """What a training state saved at `step` keeps of the guard: its numbers for the header, and the tensors of
        every snapshot but one of `step` itself (that one is the weights being saved: restored() takes it again)."""
        info = {"lr_scale": self.lr_scale, "recoveries": self.recoveries, "guard_recent": list(self.recent),
                "guard_snapshots": [snap.step for snap in self.good]}
        tensors = {}
        for i, snap in enumerate(self.good):
            if snap.step != step:
                tensors.update(snap.tensors(f"guard.{i}."))
        return info, tensors

    @classmethod
    def restored(cls, info: dict, tensors: dict, step: int, model: torch.nn.Module, optimizer) -> "Guard":
        """The guard as saved() left it, around the model and optimizer just loaded at `step`; a fresh run's (info
        empty) or an older state's without snapshots starts from the current weights. KeyError or ValueError when the
        state lacks a snapshot's tensors or they do not fit."""
        guard = cls(lr_scale=info.get("lr_scale", 1.0), recoveries=info.get("recoveries", 0))
        guard.recent.extend(info.get("guard_recent", []))
        for i, snap_step in enumerate(info.get("guard_snapshots", [step])):
            if snap_step == step:
                guard.keep(step, model, optimizer)
            else:
                guard.good.append(Snapshot.from_tensors(snap_step, f"guard.{i}.", tensors, model, optimizer))
        return guard


class Diverged(Exception):
    """Too many recoveries: the model holds the last good weights again; train.py saves them and says so."""

    def __init__(self, why: str, step: int, good_step: int, recoveries: int):
        super().__init__(why)
        self.why, self.step, self.good_step, self.recoveries = why, step, good_step, recoveries
