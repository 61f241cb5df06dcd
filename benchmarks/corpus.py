"""Build a training corpus of real photographs from Debian and PyPI packages.

    python benchmarks/corpus.py /work/corpus [--work /work/corpus-work]

Sources, downloaded into --work (reused by a rebuild) and unpacked there, never installed: Debian's
gcompris-qt-data (photos inside its Qt .rcc files), tuxpaint-stamps-default, gimp-help-en and hugin-data
(apt-get download, dpkg-deb -x); Pillow's sdist Tests/images and the sample photos in the wheels of
insightface, gradio, ultralytics, imgaug, PyWavelets (.npz arrays, written as PNG) and mahotas (pip download).
Never taken: shared/data/excluded-sources.txt, the 33 source photos of shared/data/tiny-natural, or any photo
with the same 16x16 grey thumbnail (their packages are downloaded only for that). Kept: decodable, shorter
side >= 200 px, opaque, neither flat, few-coloured nor a gradient, not listed below as looked at and found
not a plain photograph; deduplicated by bytes and thumbnail. Each keeps its original bytes, named
<source>__<inner-path>.<ext>, in OUT_DIR/train (~85%) or OUT_DIR/heldout (~15%, by a hash of the name);
OUT_DIR/SOURCES.tsv gives each one's package, path and licence.
"""

import argparse
import collections
import fnmatch
import hashlib
import io
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = [("deb", "gcompris-qt-data"), ("deb", "tuxpaint-stamps-default"), ("deb", "gimp-help-en"),
           ("deb", "hugin-data"), ("sdist", "pillow")] + [("wheel", name) for name in
           ("insightface", "gradio", "ultralytics", "imgaug", "PyWavelets", "mahotas")]
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
# Looked at: files that pass the automatic checks but are not plain photographs (fnmatch on the path).
NOT_PHOTOS = {  # gcompris: paintings, photos under drawn shapes, a screenshot, braille charts
    "gcompris-qt-data": ["*/paintings.rcc/*", "*Gogh*", "*PortraitOfPereTanguy*", "*Eglise_dAuvers*",
                         "*/babyshapes.rcc/*", "*gcompris-main-menu*", "*/chart.webp", "*/night_printing.webp"],
    "pillow": ["*hopper*", "*imageops_pad_*",  # Grace Hopper: matplotlib's excluded photo, padded or cropped
               "*/bc5*", "*/blp/*", "*/exif.png", "*/exif_[it]*.png", "*radial_gradient*", "*/test-card.png",
               "*old-style-jpeg-compression*", "*/tiff_adobe_deflate.png"],  # test charts, false colour
    "insightface": ["*/mask_*"], "imgaug": ["*depth_map*"],  # cutouts on white, a depth map
    "gradio": ["*/groot.jpeg", "*/cheetah2.jpg"],  # a CGI film still, a cutout on a baked-in checkerboard
    "mahotas": ["*/DepartmentStore.jpg", "*/lena.jpg"],  # a drawing; Lena (rights unclear, Debian strips it)
}
# Sources that are mostly screenshots and filter demos: only these unaltered photographs (file names).
ONLY = {
    "gimp-help-en": ["taj_orig.jpg", "duck_orig.png", "keyfob_orig.png", "lockbrush-orig.png",
                     "high-pass-origin.png", "spherize-ex-orig.jpg", "vignette-ex-orig.jpg",
                     "quickie-jpeg-example.jpg", "quickie-*-source.jpg", "quickie-scale-example.jpg",
                     "apple-orchard-truck-from-camera.jpg", "power-lines.jpg", "before-auto-stretch-contrast.jpg"],
    "hugin-data": ["250px-LagardePont-defish.jpg", "300px-Lamp_enfuse.jpg", "800px-C_Marchi-GrandCentral-adj.jpg",
                   "AliasingPScubic.jpg", "Big_ben_rectilinear.jpg", "Big_ben_cylindrical.jpg",
                   "CA_fringes00.jpg", "CA_tCA00.jpg", "SB_Blended.jpg"],
}


def unpack_once(root: Path, unpack) -> Path:
    """unpack(folder) into a scratch folder, renamed to root once complete; nothing if root exists."""
    if not root.exists():
        shutil.rmtree(part := root.with_name(root.name + ".part"), ignore_errors=True)
        part.mkdir(parents=True)
        unpack(part)
        part.rename(root)
    return root


def fetch(kind: str, pkg: str, work: Path) -> tuple[Path, str]:
    """Download a .deb, wheel or sdist into work once, unpack it once; its root folder and version."""
    run = lambda *cmd, cwd=work: subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    if kind == "deb":
        (work / "deb").mkdir(parents=True, exist_ok=True)
        if not list((work / "deb").glob(f"{pkg}_*.deb")):
            if subprocess.run(["apt-get", "download", pkg], cwd=work / "deb", capture_output=True).returncode:
                run("apt-get", "update")  # no package lists yet
                run("apt-get", "download", pkg, cwd=work / "deb")
        deb = next((work / "deb").glob(f"{pkg}_*.deb"))
        root = unpack_once(work / "x" / pkg, lambda to: run("dpkg-deb", "-x", str(deb), str(to)))
        return root, unquote(deb.name.split("_")[1])
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
    find = lambda: next((p for p in sorted((work / kind).glob("*")) if norm(p.name).startswith(norm(pkg) + "-")), None)
    if find() is None:
        binary = ["--no-binary", ":all:"] if kind == "sdist" else ["--only-binary", ":all:"]
        run(sys.executable, "-m", "pip", "download", "-q", "--no-deps", *binary, pkg, "-d", str(work / kind))
    archive, root = find(), work / "x" / f"py-{pkg.lower()}"
    if kind == "wheel":
        return unpack_once(root, zipfile.ZipFile(archive).extractall), archive.name.split("-")[1]
    unpack_once(root, lambda to: tarfile.open(archive).extractall(to, filter="data"))
    return next(root.iterdir()), archive.name.removesuffix(".tar.gz").split("-")[1]  # sdist: its top folder


def rcc_files(data: bytes) -> dict[str, bytes]:
    """The files of a Qt resource (.rcc) blob by resource path, zlib-compressed ones inflated."""
    magic, version, tree, payload, names = struct.unpack(">4sIIII", data[:20])
    assert magic == b"qres", "not a Qt rcc file"
    node_size, files = (14 if version < 2 else 22), {}

    def walk(node: int, path: str) -> None:
        name_at, flags, a, b = struct.unpack_from(">IHII", data, tree + node * node_size)
        (length,) = struct.unpack_from(">H", data, names + name_at)
        path += "/" + data[names + name_at + 6: names + name_at + 6 + 2 * length].decode("utf-16-be") if node else ""
        if flags & 2:  # a directory: a children, consecutive from node b
            for child in range(b, b + a):
                walk(child, path)
        elif not flags & 4:  # flag 4, zstd: not used for photos; b is where the data is
            (size,) = struct.unpack_from(">I", data, payload + b)
            blob = data[payload + b + 4: payload + b + 4 + size]
            files[path] = zlib.decompress(blob[4:]) if flags & 1 else blob
    walk(0, "")
    return files


def candidates(pkg: str, root: Path):
    """(inner path, bytes) of each image in an unpacked package, .rcc members and .npz sample arrays included."""
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        inner, suffix = str(path.relative_to(root)), path.suffix.lower()
        if pkg == "pillow" and not inner.startswith("Tests/images/"):
            continue
        if suffix in IMAGE_EXT:
            yield inner, path.read_bytes()
        elif suffix == ".rcc":
            yield from ((inner + name, blob) for name, blob in rcc_files(path.read_bytes()).items()
                        if name.lower().endswith(IMAGE_EXT))
        elif suffix == ".npz" and "/data/" in inner and "/tests/" not in inner:
            for key, array in np.load(path).items():
                if array.ndim in (2, 3) and min(array.shape[:2]) >= 200:
                    png = io.BytesIO()
                    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(png, "PNG")
                    yield f"{inner[:-4]}-{key}.png", png.getvalue()


def thumbnail(image: Image.Image) -> np.ndarray:
    """A 16x16 grey thumbnail at zero mean and unit contrast: the same for a photo at any size or tone."""
    thumb = np.asarray(image.convert("L").resize((16, 16), Image.BOX), dtype=np.float32).ravel()
    return (thumb - thumb.mean()) / (thumb.std() + 1e-6)


def near(thumb: np.ndarray, others: list[np.ndarray]) -> bool:
    """Same content: copies differ by < 0.02 on average here (a retoned one 0.15), distinct photos by > 0.28."""
    return any(np.abs(thumb - other).mean() < 0.2 for other in others)


def why_not_photo(image: Image.Image) -> str | None:
    """None for what looks like a real photograph, otherwise why not."""
    if min(image.size) < 200:
        return "shorter side under 200 px"
    if image.has_transparency_data and np.mean(np.asarray(image.convert("RGBA"))[..., 3] < 250) > 0.01:
        return "transparent (cutout, icon)"
    rgb = image.convert("RGB")
    rgb.thumbnail((512, 512))
    pixels = np.asarray(rgb, dtype=np.int32).reshape(-1, 3)
    colours = len(np.unique(pixels @ np.array([65536, 256, 1])))
    if colours < 100 or colours < 2000 and np.ptp(pixels, axis=1).max() > 8:  # grey photos have < 256
        return "few colours (drawing, diagram)"
    if np.bincount((pixels // 8) @ np.array([1024, 32, 1])).max() > 0.5 * len(pixels):
        return "half one flat colour (cutout, chart)"
    grey = np.asarray(rgb.convert("L"), dtype=np.float32)
    h, w = grey.shape[0] // 8, grey.shape[1] // 8
    if np.mean(grey[:h * 8, :w * 8].reshape(h, 8, w, 8).std(axis=(1, 3)) > 8) < 0.05:
        return "no detail (gradient, blur)"
    return None


def debian_licence(root: Path, pkg: str, inner: str) -> str:
    """License of the last stanza of the DEP-5 copyright file whose Files match the file's upstream path."""
    doc = (root / "usr/share/doc" / pkg).resolve().name  # gimp-help-en's doc folder links to gimp-help-common's
    if not (root / "usr/share/doc" / doc / "copyright").is_file():
        root = fetch("deb", doc, root.parents[1])[0]
    text, licence = (root / "usr/share/doc" / doc / "copyright").read_text(errors="replace"), "unknown"
    upstream = inner.split(".rcc/", 1)[1].split("/", 1)[1] if ".rcc/" in inner else inner  # drop the rcc prefix
    no_ext = lambda path: re.sub(r"\.\w+$", ".x", path)  # upstream's .jpg is shipped as .webp
    for paragraph in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", paragraph, re.M)
        found = re.search(r"^License:[ \t]*(.+)", paragraph, re.M)
        if files and found and any(fnmatch.fnmatch(no_ext(upstream), no_ext(p)) for p in files.group(1).split()):
            licence = found.group(1).strip()
    return licence


def pypi_licence(root: Path) -> str:
    """License-Expression, License or licence classifiers of the wheel's METADATA (an sdist's PKG-INFO)."""
    meta = next(root.glob("*.dist-info/METADATA"), root / "PKG-INFO").read_text(errors="replace")
    for field in (r"License-Expression: *(.+)", r"License: *(.{1,79})$", r"Classifier: License :: (?:.* :: )?(.+)"):
        if found := re.findall("^" + field, meta, re.M):
            return "; ".join(found)
    return "not stated"


def reference_thumbnails(work: Path) -> list[np.ndarray]:
    """Thumbnails of the photos never to take: excluded-sources.txt and tiny-natural's 33 sources."""
    wanted = [tuple(line.split("\t")) for line in (SHARED / "excluded-sources.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    for file, pkg in re.findall(r"\| `([^`]+)` \| ([^|]+?) \|", (SHARED / "tiny-natural/SOURCES.md").read_text()):
        wanted.append((pkg, "/".join(file.split(":")[1:]) if file.startswith("py:") else file.split(": ", 1)[1]))
    thumbs = []
    for pkg in sorted({pkg for pkg, _ in wanted}):
        name = pkg.removesuffix(" (PyPI)")
        files = [str(p) for p in fetch("wheel" if name != pkg else "deb", name, work)[0].rglob("*") if p.is_file()]
        for _, path in [w for w in wanted if w[0] == pkg]:
            matches = [f for f in files if f.endswith("/" + path.lstrip("/"))]
            if not matches:
                sys.exit(f"reference photo not found: {pkg} {path}")
            thumbs += [thumbnail(Image.open(f)) for f in matches]
    return thumbs


def skip_reason(pkg: str, inner: str) -> str | None:
    if pkg in ONLY and not any(fnmatch.fnmatch(inner.rsplit("/", 1)[-1], n) for n in ONLY[pkg]):
        return "screenshot or filter demo"
    if any(fnmatch.fnmatch(inner, pattern) for pattern in NOT_PHOTOS.get(pkg, [])):
        return "not a plain photograph (looked at)"
    return None


def collect(work: Path) -> tuple[list[dict], collections.Counter]:
    """The photographs of all sources that pass the checks, without duplicates; and the rejections."""
    references, found, rejected = reference_thumbnails(work), [], collections.Counter()
    for kind, pkg in SOURCES:
        root, version = fetch(kind, pkg, work)
        for inner, data in candidates(pkg, root):
            try:
                image = Image.open(io.BytesIO(data))
                image.load()
                reason = skip_reason(pkg, inner) or why_not_photo(image)
            except Exception:
                reason = "not decodable"
            if reason:
                rejected[pkg, reason] += 1
                continue
            licence = debian_licence(root, pkg, inner) if kind == "deb" else pypi_licence(root)
            inner = inner.removeprefix("usr/share/")
            name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{pkg}__{inner.rsplit('.', 1)[0]}")
            found.append(dict(name=f"{name}.{image.format.lower().replace('jpeg', 'jpg')}", data=data, source=pkg,
                              package=f"{pkg} {version}" + ("" if kind == "deb" else f" (PyPI {kind})"),
                              path=inner, licence=licence, size=image.size, thumb=thumbnail(image)))
    kept, digests = [], set()
    for photo in sorted(found, key=lambda p: (-p["size"][0] * p["size"][1], p["name"])):  # largest copy first
        digest = hashlib.sha256(photo["data"]).digest()
        if near(photo["thumb"], references):
            rejected[photo["source"], "an excluded or tiny-natural photo"] += 1
        elif digest in digests or near(photo["thumb"], [p["thumb"] for p in kept]):
            rejected[photo["source"], "duplicate"] += 1
        else:
            digests.add(digest)
            kept.append(photo)
    return kept, rejected


def write_corpus(out: Path, kept: list[dict]) -> collections.Counter:
    """Original bytes into out/train or out/heldout (15%, by a hash of the name) and out/SOURCES.tsv."""
    lines, splits = ["split\tname\tpackage\tpath\tlicence\twidth\theight"], collections.Counter()
    for split in ("train", "heldout"):
        shutil.rmtree(out / split, ignore_errors=True)
        (out / split).mkdir(parents=True)
    for p in sorted(kept, key=lambda p: p["name"]):
        # salted: autoenc's own 5% validation split hashes the bare name, and the same hash would leave train/ none
        hashed = int.from_bytes(hashlib.sha1(f"heldout/{p['name']}".encode()).digest()[:4], "big") / 2**32
        splits[split := "heldout" if hashed < 0.15 else "train"] += 1
        (out / split / p["name"]).write_bytes(p["data"])
        lines.append("\t".join([split, p["name"], p["package"], p["path"], p["licence"], *map(str, p["size"])]))
    (out / "SOURCES.tsv").write_text("\n".join(lines) + "\n")
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="e.g. /work/corpus")
    parser.add_argument("--work", type=Path, default=Path("/work/corpus-work"), help="downloads, kept for reuse")
    args = parser.parse_args()
    kept, rejected = collect(args.work)
    splits = write_corpus(args.out, kept)
    print(*(f"rejected {n:5d}  {pkg}: {reason}" for (pkg, reason), n in sorted(rejected.items())), sep="\n")
    print(*(f"kept     {n:5d}  {pkg}" for pkg, n in sorted(collections.Counter(p["package"] for p in kept).items())),
          sep="\n")
    print(f"{len(kept)} photos in {args.out}: {splits['train']} train, {splits['heldout']} heldout")
    if splits["heldout"] < 25:
        sys.exit("fewer than 25 heldout photos: too few to choose a recipe on")


if __name__ == "__main__":
    main()
