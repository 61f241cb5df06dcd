"""The training cache per machine: bytes per picture and per machine for camera-size JPEGs, against the collection's
own bytes, for 1, 2 and 4 machines.

    python benchmarks/machine_cache.py PHOTO... [--size 4000 3000] [--copies 3] [--machines 1 2 4]

Each PHOTO is cropped to the aspect of --size, resized to it (LANCZOS), given a camera's grain (Gaussian noise,
--grain, in 8-bit levels) and saved as a JPEG (quality 92), --copies times with other grain: the collection. Then
for each number of machines it splits the collection as `autoenc train` does under torchrun (the validation
pictures held out as in a folder, the training pictures shared by data/shards.split_evenly, the validation
pictures on rank 0's machine) and builds each machine's pyramid cache in a folder of its own, with the cache's
own code (data/pyramids.cached_photos, one process per machine): the bytes are those a machine holds on disk.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.data.pyramids import cached_photos, stored_pixels  # noqa: E402
from autoenc_cli.data.reading import image_size  # noqa: E402
from autoenc_cli.data.shards import split_evenly  # noqa: E402
from autoenc_cli.data.splits import split_dataset  # noqa: E402


def camera_photos(photos: list[Path], size: tuple[int, int], copies: int, grain: float, folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for photo in photos:
        img = ImageOps.fit(Image.open(photo).convert("RGB"), size, Image.LANCZOS)
        for k in range(copies):
            noisy = np.asarray(img, np.float32) + rng.normal(0, grain, (size[1], size[0], 3)).astype(np.float32)
            path = folder / f"{photo.stem}_{k}.jpg"
            Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8)).save(path, quality=92)
            out.append(path)
    return out


def cache_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("--size", type=int, nargs=2, default=[4000, 3000], metavar=("W", "H"))
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--grain", type=float, default=3.0)
    ap.add_argument("--machines", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        files = camera_photos(args.photos, tuple(args.size), args.copies, args.grain, work / "data")
        on_disk = sum(p.stat().st_size for p in files)
        split = split_dataset(work / "data")
        print(f"{len(files)} JPEGs of {args.size[0]}x{args.size[1]} ({len(split.train)} train, {len(split.val)} val): "
              f"{on_disk / 1e6:.1f} MB on disk, {on_disk / len(files) / 1e6:.2f} MB per picture")
        whole = 0
        for machines in sorted(args.machines):
            shares = split_evenly([stored_pixels(image_size(p)) for p in split.train], machines)
            sizes, t = [], time.perf_counter()
            for m, share in enumerate(shares):
                cache = work / f"cache-{machines}-{m}"
                mine = [split.train[i] for i in share]
                cached_photos(mine, cache)
                val = split.val if m == 0 else []
                if val:
                    cached_photos(val, cache)
                size, own = cache_bytes(cache), sum(p.stat().st_size for p in mine + val)
                sizes.append((size, len(mine) + len(val), own))
            whole = whole if machines > 1 else sum(size for size, _, _ in sizes)
            print(f"{machines} machine{'s' if machines > 1 else ''} ({time.perf_counter() - t:.0f} s):")
            for m, (size, n, own) in enumerate(sizes):
                print(f"  machine {m}: {size / 1e6:6.1f} MB for {n:2} pictures ({own / 1e6:5.1f} MB of JPEGs): "
                      f"{size / n / 1e6:.2f} MB per picture, {size / own:.1f}x their JPEGs, {size / whole:.0%} of one machine's")

if __name__ == "__main__":
    main()
