"""Processes: Ctrl-C and SIGTERM during training, and what the torchrun processes share (agreeing, averaging, memory);
the group itself is joined in autoenc_cli/data/group.py."""

import os
import signal
import threading

import torch
import torch.distributed as dist

from autoenc_cli.data.group import lost_processes
from autoenc_cli.errors import AutoencError


class TrainingInterrupted(AutoencError):
    """Ctrl-C or SIGTERM: the state was saved; the message says how to resume. exit_code: 128 + the signal."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class TrainingFailed(AutoencError):
    """A run that went wrong the same way on every process (the guard's decisions are shared): rank 0 says it."""
    exit_code = 1


class StopOnInterrupt:
    """The first Ctrl-C (or SIGTERM) asks the loop to stop after the current step (and save); a second one aborts."""

    def __init__(self, say):
        self.requested = False
        self.signum = signal.SIGINT
        self.previous = {}
        self.say = say
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        again = " (Ctrl-C again to abort without saving)" if signum == signal.SIGINT else ""
        self.say(f"[yellow]stopping soon to save the state{again}[/]")

    def restore(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


def free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return 0


def share_log_step(loss: float, *flags: bool, device: torch.device) -> tuple[float, ...]:
    """At a log step, in one all-reduce: the mean loss over the processes (the whole global batch's, as one process
    at batch B*W would log it), and for each flag whether any process raised it (to stop, to save: the processes
    act together, at the same step)."""
    if not dist.is_initialized():
        return (loss, *flags)
    t = torch.tensor([loss, *map(float, flags)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t[0].item() / dist.get_world_size(), *(v > 0 for v in t[1:].tolist()))


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    if not dist.is_initialized():
        return value
    t = value.detach().double().clone()
    dist.all_reduce(t)
    return (t / dist.get_world_size()).to(value.dtype)


def known_failure(error: Exception, cfg) -> AutoencError | None:
    """Running out of memory, or losing the other processes, as one line; None for anything else."""
    if isinstance(error, torch.OutOfMemoryError):
        batch = cfg.batch_size or "the default"  # resolved once start_run has run
        return AutoencError(f"out of memory at --batch-size {batch} (--channel-multiplier {cfg.channel_multiplier}); try a smaller --batch-size")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return lost_processes(error, cfg.dist_timeout)
    return None
