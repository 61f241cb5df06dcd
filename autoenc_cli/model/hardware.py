"""Choosing the device and the arithmetic precision for the machine at hand."""

import ctypes
import os
import sys
from pathlib import Path

import torch

from autoenc_cli.errors import AutoencError


def pick_device(name: str | torch.device = "auto", option: str = "--device") -> torch.device:
    """auto: cuda, then mps, then cpu. Under torchrun each process takes cuda:LOCAL_RANK. A device the computer
    does not have, or one autoenc does not run on, is refused in one line naming `option` (load() names device)."""
    if not isinstance(name, (str, torch.device)):
        raise TypeError(f"{option}: give a name such as 'cpu' or 'cuda' (or a torch.device), not {type(name).__name__}")
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        name = f"cuda:{os.environ['LOCAL_RANK']}"
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise AutoencError(f"{option} {str(name)!r}: not a device autoenc runs on (use auto, cpu, cuda, cuda:N or mps)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AutoencError(f"{option} {name}: CUDA is not available (no CUDA GPU, or torch built without CUDA)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise AutoencError(f"{option} {name}: only {torch.cuda.device_count()} CUDA device(s) (cuda:0 to "
                           f"cuda:{torch.cuda.device_count() - 1})")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise AutoencError(f"{option} {name}: MPS is not available (not an Apple GPU, or torch built without it)")
    return device


def cpuinfo(field: str) -> str | None:
    """The first `field` line of /proc/cpuinfo (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    return set((cpuinfo("flags") or "").split())


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """True only where bfloat16 matmuls run in hardware: AVX512-BF16 or AMX-BF16 (x86)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def pick_precision(name: str, device: torch.device, flags: set[str] | None = None, option: str = "--precision") -> str:
    """auto: bf16 where the hardware runs it natively, fp32 everywhere else (never emulated). A name it does not
    know is refused naming `option` (load() names precision)."""
    if name not in ("auto", "fp32", "bf16"):
        raise AutoencError(f"{option} {name!r}: use auto, fp32 or bf16")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16(flags) else "fp32"
    return "fp32"


def autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def keep_freed_memory() -> None:
    """Stop glibc from handing big freed blocks back to the OS after every training step.

    Activations of 1-30 MB are allocated and freed every step; by default glibc returns them
    (munmap / trim) and the next step page-faults them back in: on a 2-core CPU that costs a
    third of the step. Keeping them on the heap is worth ~1.4x training speed there.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: glibc's maximum
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of free heap
    except (OSError, AttributeError):
        pass
