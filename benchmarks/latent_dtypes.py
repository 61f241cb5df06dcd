"""What each latent dtype costs: bytes per image, bits per pixel, and PSNR, for any weights.

    python benchmarks/latent_dtypes.py DATA [-w WEIGHTS] [--limit 500]

DATA is a Tiny ImageNet root (its val images are used) or a folder of images; pictures are taken
as 64x64 (centre-cropped and resized when they are not). Every picture goes through exactly what
`autoenc encode --dtype D` then `autoenc decode` do (latentfile.save_latent / load_latent, in a
temporary folder), so the byte counts are real file sizes. Prints a markdown table for docs/latents.md.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from autoenc_cli.codec.encoding import decode_latents, encode_images
from autoenc_cli.data.reading import load_square
from autoenc_cli.data.splits import split_dataset
from autoenc_cli.codec.latentfile import DTYPES, INT8_MAX, bits_per_pixel, load_latent, save_latent, sidecar_path
from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.model.weights import fingerprint, load_model, resolve_weights


def per_tensor_int8(z: np.ndarray) -> np.ndarray:
    """The alternative not taken: one scale for the whole latent (what per-channel scales buy)."""
    scale = np.abs(z).max() / INT8_MAX or 1.0
    return np.clip(np.rint(z / scale), -INT8_MAX, INT8_MAX) * scale


def decode_all(model, latents: np.ndarray) -> np.ndarray:
    return np.concatenate([decode_latents(model, latents[i:i + 64]) for i in range(0, len(latents), 64)])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("-w", "--weights", type=Path, default=None, help="default: the bundled weights")
    ap.add_argument("--limit", type=int, default=500, help="at most this many pictures")
    args = ap.parse_args(argv)

    weights = resolve_weights(args.weights)
    model, meta = load_model(weights)
    split = split_dataset(args.data)
    files = (split.val or split.train)[: args.limit]
    pixels = np.stack([load_square(f) for f in files])
    latents = np.concatenate([encode_images(model, pixels[i:i + 64]) for i in range(0, len(pixels), 64)])
    latents = np.ascontiguousarray(latents)  # as loaded from files: same memory layout, same float rounding
    reference = decode_all(model, latents)
    base = psnr_per_image(reference, pixels).mean().item()
    made_with = fingerprint(weights)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in DTYPES:
            npy_bytes, side_bytes, decoded = [], [], []
            for i, z in enumerate(latents):
                path = Path(tmp) / f"{i}.npy"
                save_latent(path, z, (64, 64), dtype, weights=made_with)
                npy_bytes.append(path.stat().st_size)
                side_bytes.append(sidecar_path(path).stat().st_size)
                decoded.append(load_latent(path, len(z)).values)
            out = decode_all(model, np.stack(decoded))
            rows.append((dtype, latents[0].size * np.dtype(dtype).itemsize, np.mean(npy_bytes), np.mean(side_bytes),
                         bits_per_pixel(latents[0].shape, dtype, (64, 64)),
                         psnr_per_image(out, pixels).mean().item(), psnr_per_image(out, reference).mean().item()))
    tensor = np.stack([per_tensor_int8(z) for z in latents]).astype(np.float32)
    out = decode_all(model, tensor)
    per_tensor = (psnr_per_image(out, pixels).mean().item(), psnr_per_image(out, reference).mean().item())

    prov = meta.get("provenance", "")
    print(f"weights: {weights.name} (sha256 {made_with['sha256'][:12]}), {len(files)} pictures of {args.data}, 64x64")
    print(f"provenance: {prov}\n", file=sys.stderr)
    print("| dtype | latent values, bytes | .npy file, bytes | sidecar, bytes | bits per pixel (values) | "
          "bits per pixel (both files) | PSNR vs original, dB | cost vs float32, dB | PSNR vs float32 decode, dB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for dtype, values, npy, side, bpp, psnr, vs_ref in rows:
        files_bpp = (npy + side) * 8 / (64 * 64)
        print(f"| {dtype} | {values:,} | {npy:,.0f} | {side:,.0f} | {bpp:.1f} | {files_bpp:.1f} | {psnr:.3f} | "
              f"{signed(psnr - base)} | {vs_ref:.1f} |")
    print(f"| int8, one scale per latent (not offered) | 2,048 | | | 4.0 | | {per_tensor[0]:.3f} | "
          f"{signed(per_tensor[0] - base)} | {per_tensor[1]:.1f} |")


def signed(x: float) -> str:
    return f"{x:+.3f}" if round(x, 3) != 0 else "0.000"


if __name__ == "__main__":
    main()
