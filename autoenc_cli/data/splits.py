"""Datasets: the Tiny ImageNet layout or a folder, its train/validation split, and a fraction of each class."""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from autoenc_cli.data.listing import IMAGE_EXTENSIONS, find_images
from autoenc_cli.data.reading import image_size
from autoenc_cli.errors import AutoencError
from autoenc_cli.model.autoencoder import IMAGE_SIZE

VAL_FRACTION = 0.05  # of a plain folder, held out for validation


def is_tiny_imagenet(root: Path) -> bool:
    return (root / "train").is_dir() and any((root / "train").glob("*/images"))


def held_out(path: Path, root: Path) -> bool:
    """Deterministic validation membership from a hash of the relative path (stable as files are added)."""
    digest = hashlib.sha1(os.fsencode(path.relative_to(root))).digest()  # a name's own bytes, UTF-8 or not
    return int.from_bytes(digest[:4], "big") < VAL_FRACTION * 2**32


@dataclass
class Split:
    train: list[Path]
    val: list[Path]
    layout: str  # "tiny-imagenet" or "folder"


def check_folder(root: Path) -> None:
    """A dataset folder that exists (a missing Tiny ImageNet points to `autoenc download`)."""
    if not root.exists():
        hint = ("; download it with `autoenc download` (or add --download to train)"
                if root.name.startswith("tiny-imagenet") else "")
        raise AutoencError(f"{root}: no such file or directory{hint}")
    if root.is_file():
        raise AutoencError(f"{root}: is a file; give a folder of images or a Tiny ImageNet root")


def no_images(root: Path) -> AutoencError:
    return AutoencError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")


def split_dataset(root: str | os.PathLike) -> Split:
    """Tiny ImageNet root: train/*/images and val/images. Any other folder: a hashed 5% held out."""
    root = Path(root)
    check_folder(root)
    if is_tiny_imagenet(root):
        train = find_images(*sorted((root / "train").glob("*/images")))
        val = find_images(root / "val" / "images") if (root / "val" / "images").is_dir() else []
        if not val:  # a Tiny ImageNet tree without val: hold out part of train
            val = [p for p in train if held_out(p, root)]
            train = [p for p in train if not held_out(p, root)]
        split = Split(train, val, "tiny-imagenet")
    else:
        files = find_images(root)
        val = [p for p in files if held_out(p, root)]
        train = [p for p in files if not held_out(p, root)]
        if files and not val:  # tiny folders: keep at least one image out
            val, train = train[-1:], train[:-1] or train[-1:]
        split = Split(train, val, "folder")
    if not split.train:
        raise no_images(root)
    return split


def class_fraction(files: list[Path], fraction: float, seed: int, layout: str) -> list[Path]:
    """The same fraction of every class's files (at least one each), chosen deterministically from `seed`.

    A class is train/<wnid> in the Tiny ImageNet layout, a file's parent folder otherwise. Within a class
    files are ranked by a hash of (seed, file name), so the choice does not depend on listing order.
    """
    if fraction >= 1:
        return files
    classes: dict[Path, list[Path]] = {}
    for p in files:
        classes.setdefault(p.parent.parent if layout == "tiny-imagenet" else p.parent, []).append(p)
    keep = set()
    for members in classes.values():
        ranked = sorted(members, key=lambda p: hashlib.sha1(os.fsencode(f"{seed}/{p.name}")).digest())
        keep.update(ranked[:max(1, round(fraction * len(members)))])
    return [p for p in files if p in keep]



def all_thumbnails(files: list[Path], sample: int = 256) -> bool:
    """Whether a folder holds 64x64 pictures (judged from the headers of up to `sample` files, spread over it;
    unreadable files are counted when decoded)."""
    sizes = (image_size(p) for p in files[::max(1, len(files) // sample)])
    return all(size in (None, (IMAGE_SIZE, IMAGE_SIZE)) for size in sizes)

