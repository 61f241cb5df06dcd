"""Pictures per second of a collection's work under torchrun: 1, 2 and 4 processes, one pass and refined.

    python benchmarks/collection_speed.py FOLDER [--processes 1 2 4] [--refine 10] [--resize 64] [--json out.json]

Each run is the command a user types (`torchrun --standalone --nproc-per-node N -m autoenc_cli encode FOLDER --stack
F.npy`, with `--refine STEPS` for the refined rows), one thread per process (OMP_NUM_THREADS=1, as torchrun sets it),
timed from launch to exit: the processes' start (torch's import, the weights) is part of what a user waits for.
The ratio is to one process of the same kind, measured in the same run; the one-pass stacks are checked to be the same
bytes as one process's. On a machine with N cores, N processes is the most that can help.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def launch(processes: int, folder: Path, target: Path, extra: list[str]) -> float:
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m", "torch.distributed.run"]
    cmd = launcher + ["--standalone", f"--nproc-per-node={processes}", "-m", "autoenc_cli", "encode", str(folder),
                      "--stack", str(target), *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--refine", type=int, default=10, help="steps of the refined rows")
    ap.add_argument("--resize", type=int, default=64, help="--resize of the stack (64: crops)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from autoenc_cli.data.listing import find_images
    count = len(find_images(args.folder))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, extra in (("one pass", []), (f"--refine {args.refine}", ["--refine", str(args.refine)])):
            base = None
            for n in args.processes:
                target = Path(tmp) / f"{kind.replace(' ', '')}-{n}.npy"
                seconds = launch(n, args.folder, target, ["--resize", str(args.resize), *extra])
                rate = count / seconds
                base = base or rate
                same = ""
                if kind == "one pass" and n != args.processes[0]:
                    first = Path(tmp) / f"onepass-{args.processes[0]}.npy"
                    same = "same bytes" if np.load(target).tobytes() == np.load(first).tobytes() else "DIFFERENT bytes"
                rows.append({"kind": kind, "processes": n, "pictures": count, "seconds": round(seconds, 2),
                             "pictures_per_s": round(rate, 2), "ratio": round(rate / base, 2), "check": same})
                print(f"{kind:>12}  {n} process{'es' if n > 1 else '  '}  {seconds:7.1f} s  {rate:8.1f} pictures/s  "
                      f"x{rate / base:.2f}  {same}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
