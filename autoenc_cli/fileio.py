"""Files in and out, one way each. In: only regular files are read, and what a file is instead is said before a
byte is read (a FIFO would block for ever, a device never end). Out: every file goes to a temporary name beside its
target and is renamed into place, never over anything but a regular file (a device, a FIFO, a folder are refused)."""

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from autoenc_cli.errors import AutoencError

KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def kind_name(mode: int) -> str:
    """'a directory', 'a FIFO', ... for a st_mode that is not a regular file's."""
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def what_is(path: str | os.PathLike) -> str:
    """'a file', 'a directory', 'a FIFO', ... for what stands at `path` (links followed)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    return "a file" if stat.S_ISREG(mode) else kind_name(mode)


def resolved(path: str | os.PathLike) -> Path:
    """The absolute path with links resolved as far as they go: Path.resolve() raises on a symbolic link loop."""
    return Path(os.path.realpath(path))


def shown(path: str | os.PathLike) -> str:
    """A path as text for a picture's caption: bytes that are not UTF-8 as \\xNN escapes (a font cannot draw them)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def short_name(name: str, limit: int = 200) -> str:
    """`name` within `limit` bytes, its start and end kept (a file name may be 255 bytes; names made from it, with
    a prefix or a suffix added, must stay within that too)."""
    raw = os.fsencode(name)
    if len(raw) <= limit:
        return name
    half = (limit - 1) // 2
    return os.fsdecode(raw[:half] + b"~" + raw[-half:])


# ---------------------------------------------------------------- reading

def regular_file(path: str | os.PathLike, what: str = "file") -> os.stat_result:
    """The stat of `path` (links followed) when it is a regular file, else AutoencError naming it and what it is."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AutoencError(f"{path}: no such {what}") from None
    except (OSError, ValueError) as e:  # a link loop, a name too long, a file where a folder should be, NUL
        raise AutoencError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise AutoencError(f"{path}: is {kind_name(st.st_mode)}, not a regular file")
    return st


def open_regular(path: str | os.PathLike, what: str = "file") -> BinaryIO:
    """`path` opened for reading in binary, if it is a regular file. Opened without blocking and checked again on
    the open file: what stood at the path when it was looked at may have been swapped for a FIFO since."""
    regular_file(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise AutoencError(f"{path}: cannot read: {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise AutoencError(f"{path}: is {kind_name(mode)}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> bytes:
    """The bytes of a regular file; with `limit`, a larger file is refused before it is read."""
    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise AutoencError(f"{path}: {size:,} bytes, too large for a {what} (at most {limit:,})")
        try:
            return f.read()
        except OSError as e:
            raise AutoencError(f"{path}: cannot read: {e.strerror or e}") from None


def read_regular_text(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> str:
    """The UTF-8 text of a regular file, or AutoencError saying where it is not UTF-8."""
    data = read_regular(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AutoencError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start:,}); "
                           f"not a {what} autoenc wrote") from None


# ---------------------------------------------------------------- writing

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
    if resolved(output).is_relative_to(resolved(data)):
        raise AutoencError(f"{output}: is inside the dataset {data}; give {option} outside it")


def replace_target(path: str | os.PathLike) -> Path:
    """Where a write to `path` lands: `path`, or the file its symbolic link names (the link is kept, as a plain
    open() keeps it). AutoencError when what stands there is not a regular file: renaming over a device node, a
    FIFO or a socket would replace it with a plain file, and a folder cannot be replaced."""
    path = Path(path)
    try:
        target = resolved(path) if stat.S_ISLNK(os.lstat(path).st_mode) else path
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return resolved(path) if os.path.islink(path) else path  # nothing there yet (or a link to a file to be made)
    except (OSError, ValueError) as e:  # a link loop, a name too long, a file where a folder should be
        raise AutoencError(f"{path}: cannot write: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(mode):
        raise AutoencError(f"{path}: is {kind_name(mode)}, not a regular file; not replacing it")
    return target


def check_writable(path: str | os.PathLike) -> Path:
    """Before any work: the folder of an output can be made, and what stands at it can be replaced (replace_target)."""
    ensure_parent(Path(path))
    return replace_target(path)


def remove_stale_temps(folder: Path) -> None:
    """Delete the temporary files a killed process left in `folder` (named as atomic_path names them; regular
    files only: anything else of that name is not ours)."""
    for tmp in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(tmp).st_mode):
                tmp.unlink()


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike):
    """Yield temporary paths beside `paths`; when the block succeeds, sync them all, then rename each over its path
    (checked before the work and again at the rename: never over anything but a regular file). Files that belong
    together (a latent and its sidecar) are all written before any is renamed: a failure while writing them (a full
    disk) leaves none of them changed and no temporary behind."""
    paths = [Path(p) for p in paths]
    targets = [check_writable(p) for p in paths]
    temps: list[Path] = []
    current = paths[0]
    umask = os.umask(0)
    os.umask(umask)
    try:
        for current, target in zip(paths, targets):
            fd, tmp = tempfile.mkstemp(prefix=f".{short_name(target.name)}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        for current, tmp in zip(paths, temps):
            # mkstemp makes 0600 (and safetensors re-creates the file 0600): give the permissions a plain open() would
            os.chmod(tmp, 0o666 & ~umask)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        for current, tmp in zip(paths, temps):
            os.replace(tmp, replace_target(current))
    except BaseException as e:
        for tmp in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError):  # disk full, ...
            raise AutoencError(f"{current}: cannot write: {e.strerror or e}") from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success fsync and rename it over `path` (atomic_paths for one)."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_files_atomic(contents: dict[Path, bytes]) -> None:
    """Files that belong together, each written whole before any replaces what stood at its name (atomic_paths)."""
    with atomic_paths(*contents) as temps:
        for tmp, data in zip(temps, contents.values()):
            tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """UTF-8, with file names that are not UTF-8 written back as the bytes the system gave (surrogateescape)."""
    write_bytes_atomic(path, text.encode("utf-8", "surrogateescape"))
