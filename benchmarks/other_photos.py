"""Held-out photographs as 64x64 crops, made the way tiny-natural was made, to score recipes on pictures never trained on.

    python benchmarks/corpus.py /work/corpus                     # corpus/train and corpus/heldout
    python benchmarks/other_photos.py /work/corpus/heldout crops/  # 20 crops of each held-out photo
    autoenc eval crops/ -w WEIGHTS                                # 64x64 crops: model, bicubic, JPEG
    autoenc eval /work/corpus/heldout --whole -w WEIGHTS          # the same photos at their own size

Each crop is a random square of 25-100% of the photo's short side, resized to 64x64 with LANCZOS
and saved as JPEG quality 90, exactly as shared/data/tiny-natural's crops were. Fixed seed: the
same files every time for the same photos. The held-out photos never enter training (corpus.py
splits them off by a hash of their names), so these numbers cannot reward a recipe that learns
its training photographs rather than photographs.
"""

import random
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autoenc_cli.data import find_images, open_image  # noqa: E402

CROPS_PER_PHOTO = 20


def write_crops(photos: Path, out: Path, per_photo: int = CROPS_PER_PHOTO, seed: int = 0) -> int:
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
            crop.save(out / f"{path.stem}_{k:02d}.jpg", quality=90)
            count += 1
    return count


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(f"{write_crops(Path(sys.argv[1]), Path(sys.argv[2]))} crops in {sys.argv[2]}")
