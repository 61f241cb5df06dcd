"""Atomic writes: every file goes to a temporary name beside its target, then is renamed into place."""

import contextlib
import os
import tempfile
from pathlib import Path

from autoenc_cli.errors import AutoencError


def ensure_dir(folder: Path, for_file: Path | None = None) -> None:
    """Create `folder` and its parents, or AutoencError naming it (and the file it was for) and why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file" if blocker else (e.strerror or str(e))
        where = f"{for_file}: cannot create directory {folder}" if for_file else f"{folder}: cannot create directory"
        raise AutoencError(f"{where}: {why}") from None


def ensure_parent(path: Path) -> None:
    ensure_dir(path.parent, path)


def refuse_inside(output: Path, data: str | os.PathLike, option: str) -> None:
    """An output of a command must not lie inside the data it reads: it would be read as data next time."""
    if Path(output).resolve().is_relative_to(Path(data).resolve()):
        raise AutoencError(f"{output}: is inside the dataset {data}; give {option} outside it")


def remove_stale_temps(folder: Path) -> None:
    """Delete the temporary files a killed process left in `folder` (named as atomic_path names them)."""
    for tmp in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success fsync and rename it over `path`."""
    path = Path(path)
    ensure_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise AutoencError(f"{path}: cannot write: {e.strerror or e}") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        # mkstemp makes 0600 (and safetensors re-creates the file 0600): give the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):  # disk full, target is a directory, ...
            raise AutoencError(f"{path}: cannot write: {e.strerror or e}") from None
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
