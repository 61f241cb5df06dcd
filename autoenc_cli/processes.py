"""Processes: Ctrl-C and SIGTERM during training, and the torchrun process group (agreeing, averaging, memory)."""

import base64
import datetime
import os
import pickle
import re
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


def setup_distributed(device_name: str, timeout_s: float) -> tuple[int, int]:
    """Join torchrun's process group (nccl on CUDA, gloo otherwise); (rank, world), or (0, 1) without torchrun.

    timeout_s bounds every collective: a process whose peer hangs or vanishes without closing its sockets (a
    machine that lost power) fails after it instead of waiting forever. A peer that dies outright closes its
    sockets and the others fail at once, whatever the timeout."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and device_name in ("auto", "cuda")
        if use_nccl:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        timeout = datetime.timedelta(seconds=timeout_s)
        rank = int(os.environ["RANK"])
        store = round_store(timeout)
        dist.init_process_group("nccl" if use_nccl else "gloo", timeout=timeout,
                                **({"store": store, "rank": rank, "world_size": world} if store is not None else {}))
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def round_store(timeout: datetime.timedelta):
    """torchrun's own store, under a prefix that is new in every rendezvous round, or None (the default: env://).

    Why: torchrun (2.13, c10d rendezvous) hands its workers the agent's store, which lives across restarts, and
    the process group's keys carry no round: after a restart, the new workers read the dead ones' addresses from
    it (gloo: "connectFullMesh failed ... Connection refused"; pytorch/pytorch#135712 for NCCL). The round comes
    from the rendezvous state that torchrun keeps in that store (the same on every machine), or on its absence from
    TORCHELASTIC_RESTART_COUNT (the same on every process of one machine)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), int(os.environ["WORLD_SIZE"]),
                          is_master=False, timeout=timeout)
    round_id = rendezvous_round(store)
    if round_id is None:
        round_id = f"restart{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    return dist.PrefixStore(f"autoenc/{round_id}", store)


def rendezvous_round(store) -> str | None:
    """The c10d rendezvous round that started this process group, read from torchrun's rendezvous state."""
    key = "torch.rendezvous." + os.environ.get("TORCHELASTIC_RUN_ID", "")
    try:
        if not store.check([key]):
            return None
        state = pickle.loads(base64.b64decode(store.get(key)))  # torchrun's own _RendezvousState
        return f"round{int(state.round)}"
    except Exception:  # another rendezvous backend, another torch: fall back on the restart count
        return None


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


def lost_processes(error: Exception, timeout_s: float) -> AutoencError | None:
    """A process-group failure as one line naming this rank and the cause, or None for any other error (a bug
    keeps its traceback). Gloo and NCCL raise RuntimeErrors (DistError in newer torch) whose text starts with the
    C++ file and line that saw it; the cause is the sentence after."""
    text = str(error)
    if not (isinstance(error, dist.DistError) or any(m in text for m in ("gloo", "Gloo", "NCCL", "c10d", "TCPStore"))):
        return None
    cause = re.sub(r"\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", " ".join(text.split())).split(". ")[0].strip()
    rank = os.environ.get("RANK", "?")
    if ("timed out" in cause.lower() or "timeout" in cause.lower()) and not ("refused" in cause or "closed" in cause):
        return AutoencError(f"rank {rank}: no answer from the other processes within --dist-timeout {timeout_s:g} s ({cause})")
    return AutoencError(f"rank {rank}: lost the other processes ({cause}); torchrun restarts the group if --max-restarts allows")


def known_failure(error: Exception, cfg) -> AutoencError | None:
    """Running out of memory, or losing the other processes, as one line; None for anything else."""
    if isinstance(error, torch.OutOfMemoryError):
        batch = cfg.batch_size or "the default"  # resolved once start_run has run
        return AutoencError(f"out of memory at --batch-size {batch} (width {cfg.width}); try a smaller --batch-size")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return lost_processes(error, cfg.dist_timeout)
    return None
