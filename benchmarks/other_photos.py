"""Held-out photographs as 64x64 crops, made the way tiny-natural was made, to score recipes on pictures never trained on.

    python benchmarks/corpus.py /work/corpus                     # corpus/train and corpus/heldout
    python benchmarks/other_photos.py /work/corpus/heldout crops/  # 20 crops of each held-out photo
    python benchmarks/other_photos.py /work/corpus/heldout crops-png/ --png  # the same crops, lossless
    autoenc eval crops/ -w WEIGHTS                                # 64x64 crops: model, bicubic, JPEG
    autoenc eval /work/corpus/heldout --whole -w WEIGHTS          # the same photos at their own size

Each crop is a random square of 25-100% of the photo's short side, resized to 64x64 with LANCZOS
and saved as JPEG quality 90, exactly as shared/data/tiny-natural's crops were (--png: the same crops as
PNG, for measurements that JPEG's own blocks would bias, such as eval --rd). Fixed seed: the same files
every time for the same photos. The held-out photos never enter training (corpus.py
splits them off by a hash of their names), so these numbers cannot reward a recipe that learns
its training photographs rather than photographs.
"""

import random
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.data.listing import find_images  # noqa: E402
from autoenc_cli.data.reading import open_image

CROPS_PER_PHOTO = 20


def write_crops(photos: Path, out: Path, per_photo: int = CROPS_PER_PHOTO, seed: int = 0, png: bool = False) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    count = 0
    for path in find_images(photos):
        photo = open_image(path)
        w, h = photo.size
        for k in range(per_photo):
            side = rng.randint(max(1, min(w, h) // 4), min(w, h))
            x, y = rng.randint(0, w - side), rng.randint(0, h - side)
            crop = photo.crop((x, y, x + side, y + side)).resize((64, 64), Image.LANCZOS)
            if png:
                crop.save(out / f"{path.stem}_{k:02d}.png")
            else:
                crop.save(out / f"{path.stem}_{k:02d}.jpg", quality=90)
            count += 1
    return count


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--png"]
    if len(args) != 2:
        sys.exit(__doc__)
    print(f"{write_crops(Path(args[0]), Path(args[1]), png='--png' in sys.argv[1:])} crops in {args[1]}")
