"""Mutation testing: break the promises one at a time and see whether the tests notice.

Each mutant is one targeted edit of the source (a flipped comparison, a dropped call such as an atomic write or the
guard's state, an off-by-one in the tiles' margins, a swapped colour conversion, a removed input check). For each, the
project is copied to a temporary folder, the edit is made there (the working tree is never touched), and the test
files that cover the edited module (MODULE_TESTS) run against the copy with a timeout. A mutant is killed when
they fail (or time out), and survives when they pass: then either a test is missing, or the mutant is harmless
(docs/testing.md lists the survivors judged so, with why).

    python benchmarks/mutants.py                  # every mutant, fast tier of the mapped tests
    python benchmarks/mutants.py --slow           # the slow tier too (what the full suite runs)
    python benchmarks/mutants.py --only tiles-    # the mutants whose names start so
    python benchmarks/mutants.py --list           # names and targets, nothing run

One mutant at a time, one pytest process: it fits two shared cores. The copy holds the project's files as git
lists them; tests that start `autoenc` as a process import the copy too (PYTHONPATH).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = "autoenc_cli/"

# The test files that cover each module (a mutant of the module runs these).
MODULE_TESTS = {
    "training/guard.py": ["test_guard.py"],
    "training/run.py": ["test_guard.py", "test_train.py", "test_photos.py"],
    "training/train.py": ["test_guard.py", "test_train.py", "test_photos.py", "test_first_hour.py"],
    "training/checkpoint.py": ["test_guard.py", "test_train.py", "test_photos.py", "test_reliability.py"],
    "training/processes.py": ["test_train.py", "test_terminal.py"],
    "data/splits.py": ["test_data.py", "test_fraction.py"],
    "codec/tiles.py": ["test_tiles.py", "test_anysize.py", "test_api.py"],
    "codec/encoding.py": ["test_tiles.py", "test_api.py", "test_cli.py", "test_anysize.py", "test_color.py"],
    "codec/latentfile.py": ["test_latent.py", "test_api.py", "test_reliability.py"],
    "data/reading.py": ["test_data.py", "test_api.py", "test_reliability.py"],
    "fileio.py": ["test_reliability.py", "test_odd_inputs.py", "test_first_hour.py"],
    "cli/common.py": ["test_cli.py", "test_first_hour.py", "test_reliability.py", "test_odd_inputs.py"],
    "api.py": ["test_api.py", "test_api_inputs.py"],
    "codec/inputs.py": ["test_api.py", "test_api_inputs.py", "test_cli.py", "test_odd_inputs.py", "test_reliability.py"],
    "codec/refine.py": ["test_refine.py"],
    "training/download.py": ["test_download.py"],
}


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str  # under autoenc_cli/
    old: str  # the exact text replaced: it must occur once in the module
    new: str
    why: str  # the promise it breaks


M = Mutant
MUTANTS = [
    # ---- the breakages issue 42 found passing every test
    M("guard-rate-scale-not-restored", "training/guard.py", 'guard = cls(lr_scale=info.get("lr_scale", 1.0), recoveries=',
      'guard = cls(lr_scale=1.0, recoveries=', "--resume restores the guard's rate cut"),
    M("guard-recoveries-not-restored", "training/guard.py", 'recoveries=info.get("recoveries", 0))', "recoveries=0)",
      "--resume keeps the count of recoveries (3 in all, not 4)"),
    M("guard-snapshots-not-restored", "training/guard.py", 'enumerate(info.get("guard_snapshots", [step]))',
      "enumerate([step])", "a resumed run recovers to the uninterrupted run's snapshot"),
    M("guard-recent-not-restored", "training/guard.py", 'guard.recent.extend(info.get("guard_recent", []))',
      "guard.recent.extend([])", "a resumed run judges spikes against the same recent losses"),
    M("second-ctrl-c-ignored", "training/processes.py", "if self.requested:\n            raise KeyboardInterrupt",
      "if self.requested:\n            return", "a second Ctrl-C aborts"),
    M("api-reads-pil-with-convert", "codec/inputs.py", "picture = np.asarray(to_rgb(picture), dtype=np.uint8)",
      'picture = np.asarray(picture.convert("RGB"), dtype=np.uint8)', "the API reads PIL images as the CLI reads files"),
    M("refine-loss-counts-padding", "codec/refine.py", "(pixel < min(last, valid))", "(pixel < last)",
      "refinement fits the picture's own pixels, not its padding"),
    M("refine-context-short", "codec/refine.py", "context = tile.margin // 2", "context = tile.margin // 2 - 1",
      "a tiled refinement is the one-pass refinement (no seams)"),
    M("refine-every-step-from-the-start", "codec/refine.py", "optimizer.step()", "optimizer.zero_grad()",
      "refinement moves the latent"),
    M("tiles-decode-ignores-lab", "codec/tiles.py", "finish=lambda y: from_network(y, model.color)",
      'finish=lambda y: from_network(y, "rgb")', "tiled decoding honours the colour encoding"),
    M("output-names-may-collide", "cli/common.py", "    distinct_stems(inputs, str(output))\n", "",
      "two inputs of one name are refused, not written to one output"),
    M("split-by-rank", "data/splits.py", "        val = [p for p in files if held_out(p, root)]\n",
      "        val = files[::20]\n", "the validation split is stable as files are added"),
    # ---- training loop and state
    M("state-window-loss-dropped", "training/train.py", '"window_loss": s.window_loss.item(),', '"window_loss": 0.0,',
      "--resume continues the logged mean of the window it stopped in"),
    M("log-trim-drops-the-save-step", "training/checkpoint.py", 'int(r["step"]) <= resume_step]',
      'int(r["step"]) < resume_step]', "--resume keeps the log rows up to the saved step"),
    M("interrupt-without-save", "training/train.py",
      "                checkpoint(run, s)\n                raise TrainingInterrupted", "                raise TrainingInterrupted",
      "Ctrl-C always saves"),
    M("warmup-off-by-one", "training/train.py", "return cfg.lr * (step + 1) / cfg.warmup_steps",
      "return cfg.lr * step / cfg.warmup_steps", "the warm-up's first step trains (a rate of 0 wastes it)"),
    M("no-save-at-epoch-end", "training/train.py", "if end_of_epoch or s.step % run.cfg.save_every == 0 or",
      "if s.step % run.cfg.save_every == 0 or", "every epoch's end is saved"),
    M("state-not-atomic", "training/checkpoint.py", "    with atomic_path(path) as tmp:\n        save_file(tensors, str(tmp), metadata=meta)",
      "    save_file(tensors, str(path), metadata=meta)", "a killed save never leaves a half-written state"),
    M("state-info-unchecked", "training/checkpoint.py", "        check_info(info, groups)\n", "",
      "a damaged training state is one line, not a traceback"),
    M("below-best-inverted", "training/train.py", "s.val_psnr < s.best_psnr - WORSE_THAN_BEST_DB",
      "s.val_psnr > s.best_psnr - WORSE_THAN_BEST_DB", "a run that ends well is done"),
    # ---- the divergence guard
    M("guard-goes-back-to-newer", "training/guard.py", "back_to = self.good[0]", "back_to = self.good[-1]",
      "a blow-up goes back to the older snapshot"),
    M("guard-one-recovery-more", "training/guard.py", "if self.recoveries > MAX_RECOVERIES:",
      "if self.recoveries > MAX_RECOVERIES + 1:", "after MAX_RECOVERIES the run stops"),
    M("guard-no-rate-cut", "training/guard.py", "        self.lr_scale *= LR_CUT\n", "", "each recovery halves the rate"),
    M("guard-snapshot-aliases-weights", "training/guard.py",
      "weights = [t.detach().clone() for t in model.state_dict().values()]",
      "weights = [t.detach() for t in model.state_dict().values()]", "a snapshot is a copy"),
    M("guard-broken-loss-ignored", "training/guard.py", "    if loss > BROKEN_LOSS:", "    if loss > BROKEN_LOSS * 1e6:",
      "outputs pinned at the clamp are a blow-up"),
    M("guard-snapshot-saved-never", "training/guard.py", "            if snap.step != step:\n                tensors.update",
      "            if False:\n                tensors.update", "the state holds the guard's older snapshots"),
    # ---- tiles
    M("tiles-decoder-margin-short", "codec/tiles.py", "return max(cell - first, last - cell)",
      "return max(cell - first, last - cell) - 1", "tiles give the one-pass pixels"),
    M("tiles-encoder-margin-short", "codec/tiles.py", "(cell * DOWNSCALE + DOWNSCALE - 1)) / DOWNSCALE)",
      "(cell * DOWNSCALE + DOWNSCALE - 1)) / DOWNSCALE) - 1", "tiles give the one-pass latents"),
    M("tiles-window-start-off-by-one", "codec/tiles.py", "min(max(start - margin, 0), cells - window)",
      "min(max(start - margin + 1, 0), cells - window)", "a core has its whole margin"),
    M("tiles-window-half-margin", "codec/tiles.py", "return math.ceil(cells / count) + 2 * margin",
      "return math.ceil(cells / count) + margin", "windows hold a margin on both sides"),
    M("tiles-encode-ignores-lab", "codec/tiles.py", "prepare=lambda x: network_input(x, model.color)",
      'prepare=lambda x: network_input(x, "rgb")', "tiled encoding honours the colour encoding"),
    # ---- codec and latent files
    M("pad-by-edge", "codec/encoding.py", 'mode="reflect")', 'mode="edge")', "pictures are padded by mirroring"),
    M("decode-crop-swapped", "codec/encoding.py", "return decode_tiled(model, values, max_memory_mb, precision)[:h, :w]",
      "return decode_tiled(model, values, max_memory_mb, precision)[:w, :h]", "a decoded picture has its own size"),
    M("png-not-atomic", "codec/encoding.py", "    write_bytes_atomic(path, buf.getvalue())",
      '    open(path, "wb").write(buf.getvalue())', "a picture is written whole or not at all"),
    M("other-weights-not-warned", "codec/encoding.py", 'made_with.get("sha256") not in (None, using.get("sha256"))',
      'made_with.get("sha256") in (None, using.get("sha256"))', "decode warns of a latent made with other weights"),
    M("int8-scale-off", "codec/latentfile.py", 'scale = [float(f"{p / INT8_MAX:.3g}") if p > 0 else 1.0 for p in peak]',
      'scale = [float(f"{p / INT8_MAX:.1g}") if p > 0 else 1.0 for p in peak]', "int8 latents keep 3 digits of scale"),
    M("int8-scale-against-126", "codec/latentfile.py", 'float(f"{p / INT8_MAX:.3g}")', 'float(f"{p / (INT8_MAX - 1):.3g}")',
      "an int8 latent uses its whole stored range, +-127"),
    M("sidecar-written-after-npy", "codec/latentfile.py", "write_files_atomic({Path(path): npy, side: sidecar})",
      "write_files_atomic({Path(path): npy}); write_files_atomic({side: sidecar})", "never a .npy without its sidecar"),
    # ---- reading pictures
    M("alpha-over-black", "data/reading.py", "(255, 255, 255, 255)", "(0, 0, 0, 255)", "transparency goes over white"),
    M("exif-ignored", "data/reading.py", "    img = ImageOps.exif_transpose(img)\n", "",
      "pictures are read the way they are shown (EXIF orientation)"),
    M("sixteen-bit-unscaled", "data/reading.py", "scale = 255.0 / 65535.0 if", "scale = 1.0 if", "16-bit levels are scaled"),
    # ---- file safety
    M("temp-left-on-failure", "fileio.py", "        for tmp in temps:\n            with contextlib.suppress(OSError):\n                os.unlink(tmp)",
      "        for tmp in temps:\n            with contextlib.suppress(OSError):\n                pass", "a failed write leaves no temporary file"),
    M("replace-anything", "fileio.py", "    if not stat.S_ISREG(mode):\n        raise", "    if False:\n        raise",
      "a FIFO or device is never replaced by a plain file"),
    M("no-fsync", "fileio.py", "            os.fsync(f.fileno())", "            pass",
      "a written file reaches the disk before it replaces the old one"),
    M("output-inside-data", "fileio.py", "    if resolved(output).is_relative_to(resolved(data)):", "    if False:",
      "an output is never written inside the data it reads"),
    # ---- the CLI's output rules
    M("default-output-replaces", "cli/common.py", "            if (t.exists() or t.is_symlink()) and not allow_existing:", "            if False:",
      "a default output name never replaces the user's file"),
    M("output-may-be-input", "codec/inputs.py", "        if any(same_file(t, p) for p in inputs):", "        if False:",
      "an output never replaces an input"),
    M("folder-input-accepted", "codec/inputs.py", "        if p.is_dir():\n            raise", "        if False:\n            raise",
      "a folder given as an input file is one line"),
    # ---- the API's input reading
    M("api-array-check-loose", "codec/inputs.py", "if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:",
      "if picture.ndim != 3:", "the API refuses arrays that are not H x W x 3 uint8"),
    M("api-tensor-range", "api.py", "units = encode_pixels(batch.float() * 255)",
      "units = encode_pixels(batch.float() * 256)", "a [0, 1] tensor is read as the bytes it stands for"),
    # ---- downloads
    M("md5-case-sensitive", "training/download.py", "if got != md5.lower():", "if got != md5:",
      "--md5 takes a checksum in upper case too"),
]


def source_text(root: Path, mutant: Mutant) -> str:
    return (root / PKG / mutant.module).read_text()


def check_targets(root: Path = ROOT) -> list[str]:
    """The mutants whose target text is not in their module exactly once (the source moved on: update them)."""
    stale = []
    for m in MUTANTS:
        count = source_text(root, m).count(m.old)
        if count != 1:
            stale.append(f"{m.name}: {m.module} holds its target {count} times")
    names = [m.name for m in MUTANTS]
    stale += [f"{n}: two mutants of this name" for n in sorted({n for n in names if names.count(n) > 1})]
    stale += [f"{m.name}: no tests mapped to {m.module}" for m in MUTANTS if m.module not in MODULE_TESTS]
    stale += [f"{module}: maps to {t}, which is not in tests/" for module, tests in MODULE_TESTS.items() for t in tests
              if not (root / "tests" / t).is_file()]
    return stale


def copy_project(dest: Path) -> Path:
    """The files git knows (tracked, and untracked but not ignored), copied: no .venv, no caches."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def run_tests(copy: Path, tests: list[str], slow: bool, timeout: float) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, the output's last lines) of pytest on `tests` in the copy."""
    marker = "slow or not slow" if slow else "not slow"
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", marker,
           *[f"tests/{t}" for t in tests]]
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # its own session: pytest and whatever it started
        proc.communicate()
        return "timeout", time.monotonic() - start, ""
    tail = "\n".join(out.strip().splitlines()[-3:])
    return ("passed" if proc.returncode == 0 else "failed"), time.monotonic() - start, tail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="run the mutants whose names start with this (comma-separated)")
    ap.add_argument("--slow", action="store_true", help="run the slow tier of the mapped tests too")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per mutant (a timeout counts as killed)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the first run of the tests on the unchanged copy")
    args = ap.parse_args()
    stale = check_targets()
    if stale:
        print("mutants that no longer apply:\n  " + "\n  ".join(stale), file=sys.stderr)
        return 2
    prefixes = [p for p in args.only.split(",") if p]
    chosen = [m for m in MUTANTS if not prefixes or m.name.startswith(tuple(prefixes))]
    if args.list:
        for m in chosen:
            print(f"{m.name:34} {m.module:24} {m.why}")
        return 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    header = {"date": datetime.date.today().isoformat(), "commit": commit, "cpu": cpu_model(),
              "tier": "fast and slow" if args.slow else "fast", "command": " ".join(sys.argv)}
    print(json.dumps(header), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="autoenc-mutants-") as tmp:
        copy = copy_project(Path(tmp))
        if not args.no_baseline:  # the tests must pass on the unchanged copy, or a failure says nothing of a mutant
            tests = sorted({t for m in chosen for t in MODULE_TESTS[m.module]})
            outcome, seconds, tail = run_tests(copy, tests, args.slow, args.timeout * 3)
            print(f"baseline: {outcome} in {seconds:.0f} s", flush=True)
            if outcome != "passed":
                print(tail, file=sys.stderr)
                return 1
        for m in chosen:
            target = copy / PKG / m.module
            original = target.read_text()
            target.write_text(original.replace(m.old, m.new, 1))
            try:
                outcome, seconds, tail = run_tests(copy, MODULE_TESTS[m.module], args.slow, args.timeout)
            finally:
                target.write_text(original)  # restored before the next mutant
            verdict = "survived" if outcome == "passed" else "killed" + (" (timeout)" if outcome == "timeout" else "")
            results.append({"name": m.name, "module": m.module, "verdict": verdict, "seconds": round(seconds),
                            "why": m.why, "tail": tail})
            print(f"{verdict:17} {m.name:34} {seconds:5.0f} s", flush=True)
            if args.json:
                args.json.write_text(json.dumps({**header, "results": results}, indent=1))
    killed = sum(r["verdict"].startswith("killed") for r in results)
    print(f"score: {killed} of {len(results)} killed; survivors: "
          f"{', '.join(r['name'] for r in results if r['verdict'] == 'survived') or 'none'}")
    return 0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
