"""A second evaluation set, from photos that are not in shared/: 64x64 crops of scikit-image's samples.

    python benchmarks/other_photos.py OUT_DIR        # then: autoenc eval OUT_DIR -w WEIGHTS

The tiny-natural val split shares its 33 source photographs with the training split, so it
cannot show a recipe that only fits those photos. This writes 40 crops of each of 11 sample
photos shipped with scikit-image (a test dependency; licences in skimage/data/README.txt),
made the way tiny-natural was: a random square (64 px up to half the short side), LANCZOS
resize to 64x64, JPEG quality 90. Fixed seed: the same 440 files every time.
"""

import random
import sys
from pathlib import Path

import skimage
from PIL import Image

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "camera.png",
          "grass.png", "gravel.png", "brick.png", "moon.png", "hubble_deep_field.jpg"]
CROPS_PER_PHOTO = 40


def main(out: Path) -> None:
    source = Path(skimage.__file__).parent / "data"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for name in PHOTOS:
        photo = Image.open(source / name).convert("RGB")
        w, h = photo.size
        for k in range(CROPS_PER_PHOTO):
            side = rng.randint(64, max(64, min(w, h) // 2))
            x, y = rng.randint(0, w - side), rng.randint(0, h - side)
            crop = photo.crop((x, y, x + side, y + side)).resize((64, 64), Image.LANCZOS)
            crop.save(out / f"{Path(name).stem}_{k:02d}.jpg", quality=90)
    print(f"{len(PHOTOS) * CROPS_PER_PHOTO} crops in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "other-photos"))
