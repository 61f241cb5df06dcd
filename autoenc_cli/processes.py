"""Processes: Ctrl-C and SIGTERM during training, and the torchrun process group (agreeing, averaging, memory)."""

import os
import signal
import threading

import torch
import torch.distributed as dist

from .errors import AutoencError


class TrainingInterrupted(AutoencError):
    """Ctrl-C or SIGTERM: the state was saved; the message says how to resume. exit_code: 128 + the signal."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


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


def setup_distributed(device_name: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and device_name in ("auto", "cuda")
        if use_nccl:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_nccl else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return 0


def any_process(flag: bool, device: torch.device) -> bool:
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item() > 0


def mean_over_processes(value: float, device: torch.device) -> float:
    """The logged loss is the whole global batch's, as one process at batch B*W would log it."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()
