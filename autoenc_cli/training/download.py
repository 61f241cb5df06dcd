"""Getting Tiny ImageNet: a resumable download, an MD5 check, and a safe extraction.

DIR.zip.part grows as bytes arrive (an interrupted download continues from it with an HTTP
Range request); once whole and verified it becomes DIR.zip. The archive is checked entry by
entry before anything is written (no absolute paths, no `..`, no links or special files, enough
free disk), extracted into a hidden folder beside DIR, and only then renamed to DIR: a folder
named DIR is always complete.
"""

import contextlib
import errno
import hashlib
import http.client
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from autoenc_cli.data.splits import is_tiny_imagenet
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import ensure_parent, open_regular, regular_file, replace_target

OFFICIAL_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
OFFICIAL_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
DEFAULT_DIR = "tiny-imagenet-200"
CHUNK = 1 << 20
TIMEOUT_S = 60
ATTEMPTS = 5  # connections per download while each one brings new bytes


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _quiet(*_):
    pass


def _no_space(path: Path, needed: int) -> AutoencError:
    free = shutil.disk_usage(path).free
    return AutoencError(f"{path}: not enough free disk: needs {_mb(needed)}, {_mb(free)} free")


# ---------------------------------------------------------------- download

def _open(url: str, start: int):
    request = urllib.request.Request(url, headers={"User-Agent": "autoenc", "Accept-Encoding": "identity"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # nothing after `start`: the partial file is already whole
            return None
        raise AutoencError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        host = urllib.parse.urlsplit(url).netloc or url
        raise AutoencError(f"cannot reach {host}: {getattr(e.reason, 'strerror', None) or e.reason} "
                           "(check the network, or pass --url a mirror or a local zip)") from None
    except (OSError, ValueError) as e:
        raise AutoencError(f"{url}: cannot download: {e}") from None


def _fetch_once(url: str, part: Path, progress) -> tuple[int, int | None]:
    """One connection: append what the server sends to `part`. Returns (bytes now in part, total or None)."""
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start)
    if response is None:
        return start, start
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if start and response.status == 206:
            first = response.headers.get("Content-Range", "").replace("bytes ", "").split("-")[0]
            if first != str(start):
                raise AutoencError(f"{url}: the server answered a resume request with the wrong range")
        elif start:  # 200: the server ignores Range; start over
            start = 0
        total = start + length if length is not None else None
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if total - start > free:
                raise _no_space(part.parent, total - start)
        done = start
        progress(done, total, "downloading")
        try:
            with open(part, "ab" if start else "wb") as f:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    progress(done, total, "downloading")
        except (ConnectionError, TimeoutError, http.client.HTTPException):
            return done, total  # the connection broke: the caller decides whether to retry
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise AutoencError(f"{part}: disk full after {_mb(done)}; free some space and run again to resume") from None
            raise AutoencError(f"{part}: cannot write: {e.strerror or e}") from None
    return done, total


def fetch(url: str, part: Path, progress=_quiet, say=_quiet, attempts: int = ATTEMPTS) -> None:
    """Download `url` into `part`, resuming from what `part` already holds; retry while bytes keep coming."""
    ensure_parent(part)
    replace_target(part)  # appended to: a FIFO there would block, a device swallow the download
    before = part.stat().st_size if part.exists() else 0
    if before:
        say(f"resuming the download at {_mb(before)} ({part})")
    for attempt in range(attempts):
        done, total = _fetch_once(url, part, progress)
        if total is None or done == total:
            return
        if done > total:
            raise AutoencError(f"{part}: larger than the server's file ({_mb(done)} > {_mb(total)}); delete it and run again")
        if attempt + 1 < attempts and done > before:
            say(f"connection lost at {_mb(done)} of {_mb(total)}; resuming")
            before = done
            continue
        raise AutoencError(f"download interrupted at {_mb(done)} of {_mb(total)}; run the same command again to resume")


def md5_of(path: Path, progress=_quiet) -> str:
    h, done, total = hashlib.md5(), 0, path.stat().st_size
    with open_regular(path) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            done += len(chunk)
            progress(done, total, "checking MD5")
    return h.hexdigest()


def verify(path: Path, md5: str | None, progress=_quiet, remove: bool = True) -> None:
    """Raise (removing the file when `remove`) unless its MD5 is `md5`; None skips the check."""
    if not md5:
        return
    got = md5_of(path, progress)
    if got != md5.lower():
        if remove:
            path.unlink(missing_ok=True)
        removed = "; the download was removed, run again to fetch it afresh" if remove else ""
        raise AutoencError(f"{path}: checksum mismatch: MD5 {got}, expected {md5.lower()}{removed}")


# ---------------------------------------------------------------- safe extraction

class UnsafeArchive(AutoencError):
    """An archive with an entry that could write outside its folder."""


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    mode = info.external_attr >> 16
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "a '..' component"
    if "\0" in name:
        return "a NUL byte in its name"
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "a symbolic link" if stat.S_ISLNK(mode) else "a special file (not a plain file or folder)"
    return None


def check_archive(zf: zipfile.ZipFile, archive: Path) -> int:
    """Refuse unsafe entries before anything is written; return the total uncompressed size."""
    for info in zf.infolist():
        problem = _entry_problem(info)
        if problem:
            raise UnsafeArchive(f"{archive}: refused: entry {info.filename!r} has {problem}")
    return sum(info.file_size for info in zf.infolist())


def extract(archive: Path, dest: Path, progress=_quiet) -> None:
    """Extract `archive` into a hidden folder beside `dest`, then rename it to `dest`."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise AutoencError(f"{archive}: not a readable zip file ({e})") from None
    with zf:
        size = check_archive(zf, archive)
        ensure_parent(dest)
        if size > shutil.disk_usage(dest.parent).free:
            raise _no_space(dest.parent, size)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
        except OSError as e:
            raise AutoencError(f"{dest.parent}: cannot write: {e.strerror or e}") from None
        try:
            _extract_into(zf, tmp, size, progress)
            inner = list(tmp.iterdir())
            root = inner[0] if len(inner) == 1 and inner[0].is_dir() else tmp  # the zip's own top folder
            if root == tmp:
                tmp.chmod(0o755)  # mkdtemp made it private
            os.rename(root, dest)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise _no_space(dest.parent, size) from None
            raise AutoencError(f"{dest}: cannot extract {archive}: {e.strerror or e}") from None
        except zipfile.BadZipFile as e:
            raise AutoencError(f"{archive}: damaged zip file ({e})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _extract_into(zf: zipfile.ZipFile, tmp: Path, size: int, progress) -> None:
    done = 0
    base = tmp.resolve()
    for info in zf.infolist():
        target = tmp.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
        if base not in target.resolve().parents and target.resolve() != base:
            raise UnsafeArchive(f"refused: entry {info.filename!r} would land outside the folder")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "xb") as dst:  # "x": a duplicate entry never overwrites
            shutil.copyfileobj(src, dst, CHUNK)
        done += info.file_size
        progress(done, size, "extracting")


# ---------------------------------------------------------------- the whole job

def is_complete(dest: Path) -> bool:
    return dest.is_dir() and is_tiny_imagenet(dest)


def download_dataset(dest: str | os.PathLike = DEFAULT_DIR, url: str = OFFICIAL_URL, md5: str | None = OFFICIAL_MD5,
                     progress=_quiet, say=_quiet, attempts: int = ATTEMPTS) -> bool:
    """Make `dest` a complete dataset folder from `url` (http(s), file:// or a local zip path).

    Returns False when `dest` was already complete (nothing done), True after a download.
    """
    dest = Path(dest)
    if is_complete(dest):
        say(f"{dest} is already a complete Tiny ImageNet folder; nothing to do")
        return False
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise AutoencError(f"{dest}: exists and is not a Tiny ImageNet folder; remove it or choose another folder")
    for stale in dest.parent.glob(f".{dest.name}.extract-*"):  # left by an extraction that was killed
        shutil.rmtree(stale, ignore_errors=True)
    local = _local_path(url)
    if local is not None:
        regular_file(local)  # a FIFO or a device named x.zip is refused before it is read
        verify(local, md5, progress, remove=False)
        archive = local
    else:
        archive = dest.parent / f"{dest.name}.zip"
        part = archive.with_name(archive.name + ".part")
        if archive.exists() or archive.is_symlink():
            regular_file(archive)
            say(f"using the earlier download {archive}")
            verify(archive, md5, progress)
        else:
            say(f"downloading {url}")
            fetch(url, part, progress, say, attempts)
            verify(part, md5, progress)
            os.replace(part, archive)
    if dest.is_dir():
        dest.rmdir()  # empty: the rename takes its place
    say(f"extracting {archive}")
    try:
        extract(archive, dest, progress)
    except UnsafeArchive:
        if local is None:
            archive.unlink(missing_ok=True)  # a refused download is of no use
        raise
    if local is None:
        with contextlib.suppress(OSError):
            archive.unlink()
    if not is_tiny_imagenet(dest):
        say(f"[yellow]warning:[/] {dest} is not in the Tiny ImageNet layout (train/<class>/images); "
            "autoenc train will treat it as a plain folder of images")
    return True


def _local_path(url: str) -> Path | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme in ("http", "https", "ftp"):
        return None
    if len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return Path(url)
    raise AutoencError(f"--url {url!r}: use http://, https://, file:// or a local path")
