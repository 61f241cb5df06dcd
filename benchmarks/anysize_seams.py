"""Whole pictures against their 64x64 tiles: what encoding at the picture's own size costs or gains.

    python benchmarks/anysize_seams.py PHOTO [PHOTO ...] [-w WEIGHTS]

Each photo is cut to a multiple of 64 (top-left part kept), then (a) encoded and decoded in one
pass, as `autoenc encode`/`decode` do, and (b) cut into 64x64 tiles, each encoded and decoded
alone (as the network was trained), and stitched back. Prints the PSNR of both over the whole
picture, and the mean of the tiles' own PSNRs, which is NOT comparable (a mean of dB favours the
smooth tiles), as a markdown table for docs/latents.md.
"""

import argparse
from pathlib import Path

import numpy as np

from autoenc_cli.codec.encoding import decode_latents, decode_picture, encode_images, encode_picture, read_picture
from autoenc_cli.codec.latentfile import Latent
from autoenc_cli.codec.metrics import psnr_per_image
from autoenc_cli.model.weights import load_model, resolve_weights


def one_pass_and_tiles(model, pixels: np.ndarray) -> tuple[float, float, float]:
    """On the picture cut to a multiple of 64: PSNR of one pass through the network (as autoenc
    does), of its 64x64 crops stitched back together, and the mean of the crops' own PSNRs."""
    h, w = pixels.shape[0] // 64 * 64, pixels.shape[1] // 64 * 64
    big = np.ascontiguousarray(pixels[:h, :w])
    one_pass = decode_picture(model, Latent(encode_picture(model, big), (w, h)))
    crops = big.reshape(h // 64, 64, w // 64, 64, 3).swapaxes(1, 2).reshape(-1, 64, 64, 3)
    rec = decode_latents(model, np.ascontiguousarray(encode_images(model, crops)))
    stitched = rec.reshape(h // 64, w // 64, 64, 64, 3).swapaxes(1, 2).reshape(h, w, 3)
    return (psnr_per_image(one_pass[None], big[None]).item(), psnr_per_image(stitched[None], big[None]).item(),
            psnr_per_image(rec, crops).mean().item())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("-w", "--weights", type=Path, default=None, help="default: the bundled weights")
    args = ap.parse_args(argv)
    weights = resolve_weights(args.weights)
    model, _ = load_model(weights)
    print(f"weights: {weights}\n")
    print("| photo | size used | one pass, dB | 64x64 tiles stitched, dB | one pass minus tiles, dB | mean of the tiles' own PSNRs, dB |")
    print("|---|---|---:|---:|---:|---:|")
    for photo in args.photos:
        pixels = read_picture(photo)
        if min(pixels.shape[:2]) < 64:
            print(f"| {photo.name} | smaller than 64x64: skipped | | | | |")
            continue
        one_pass, tiled, tile_mean = one_pass_and_tiles(model, pixels)
        h, w = pixels.shape[0] // 64 * 64, pixels.shape[1] // 64 * 64
        print(f"| {photo.name} | {w}x{h} | {one_pass:.2f} | {tiled:.2f} | {one_pass - tiled:+.2f} | {tile_mean:.2f} |")


if __name__ == "__main__":
    main()
