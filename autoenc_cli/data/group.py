"""Joining torchrun's process group, and saying in one line when the other processes are lost. Used by training
and by the batch jobs over a collection (jobs.py)."""

import datetime
import os
import re
import socket
import time

import torch
import torch.distributed as dist

from autoenc_cli.errors import AutoencError


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
    """A store that is new for every start of the group, or None where the default (env://) is one already.

    Why: torchrun (2.13) hands its workers the agent's store (TORCHELASTIC_USE_AGENT_STORE), which lives across
    restarts, and the process group's keys carry no round: after a restart, the new workers read the dead ones'
    addresses from it (gloo: "connectFullMesh failed ... Connection refused"; pytorch/pytorch#135712 for NCCL).
    Prefixing the keys with TORCHELASTIC_RESTART_COUNT is not enough: when one machine loses a worker, only that
    machine's count moves, and the group hangs. So rank 0 serves a store of its own on a free port, as torchrun
    does with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1, and publishes its address and a random token in the agent's
    store; the others take the address that answers with that token. A stale address is a dead rank 0's (all
    workers of the last start were stopped before this one began): it refuses, or answers another token."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    world = int(os.environ["WORLD_SIZE"])
    agent = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False, timeout=timeout)
    if int(os.environ["RANK"]) == 0:
        own = dist.TCPStore("0.0.0.0", 0, world, is_master=True, timeout=timeout, wait_for_workers=False)
        token = os.urandom(8).hex()
        own.set(TOKEN_KEY, token)
        agent.set(ADDRESS_KEY, f"{socket.getfqdn()} {own.port} {token}")
        return own
    return store_that_answers(agent, world, timeout)


ADDRESS_KEY, TOKEN_KEY = "autoenc/group_store", "autoenc/token"


def store_that_answers(agent, world: int, timeout: datetime.timedelta):
    """The store rank 0 published in the agent's store, once an address there answers with its token."""
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        host, port, token = agent.get(ADDRESS_KEY).decode().split()
        try:
            store = dist.TCPStore(host, int(port), world, is_master=False, timeout=datetime.timedelta(seconds=5))
            if store.check([TOKEN_KEY]) and store.get(TOKEN_KEY).decode() == token:
                return store
        except (RuntimeError, dist.DistError):  # refused: a dead rank 0's address; rank 0 has not published yet
            pass
        if time.monotonic() > deadline:
            raise AutoencError(f"rank {os.environ.get('RANK')}: rank 0's store did not answer within --dist-timeout")
        time.sleep(0.2)


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
