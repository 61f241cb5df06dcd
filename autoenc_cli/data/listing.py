"""Finding pictures: the image files of folders (recursively, each folder once) and of a command's inputs."""

import os
from pathlib import Path

from autoenc_cli.errors import AutoencError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"}

def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_images(*folders: Path) -> list[Path]:
    """Image files under `folders`, recursively, extensions matched case-insensitively, sorted.

    Links to folders are followed, but no folder is entered twice (known by device and inode): a link to `.` or
    to a parent would otherwise be walked for ever, and one to a sibling would list its pictures twice."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    pending = [Path(f) for f in reversed(folders)]
    while pending:
        here = pending.pop()
        try:
            st = os.stat(here)
        except OSError:  # a dangling link or a link loop: no folder to enter
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        folders, files = folder_entries(here)
        found += files
        pending += reversed(folders)  # depth first, in name order
    return sorted(found)


def folder_entries(here: Path) -> tuple[list[Path], list[Path]]:
    """The visible subfolders (links to folders too) and the image files of one folder, each sorted by name."""
    folders, files = [], []
    try:
        with os.scandir(here) as entries:
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    is_dir = e.is_dir()  # follows a link
                except OSError:
                    is_dir = False
                if is_dir:
                    folders.append(Path(e.path))
                elif is_image_file(Path(e.name)):
                    files.append(Path(e.path))  # a FIFO or device named x.png too: open_image refuses and it is counted
    except OSError as e:
        raise AutoencError(f"{here}: cannot read folder ({e.strerror or e})") from None
    return sorted(folders), sorted(files)


def image_files(inputs: list[Path]) -> list[Path]:
    """Files as given and the image files found in folders, in that order; an error when one is missing or none is found."""
    for p in inputs:
        try:
            os.stat(p)
        except FileNotFoundError:
            raise AutoencError(f"{p}: no such file or folder") from None
        except (OSError, ValueError) as e:  # a link loop, a name too long
            raise AutoencError(f"{p}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    files = [f for p in inputs for f in (find_images(p) if p.is_dir() else [p])]
    if not files:
        raise AutoencError(f"no image files ({', '.join(str(p) for p in inputs)}); extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return files
