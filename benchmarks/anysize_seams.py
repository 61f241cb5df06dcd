"""Whole pictures against their 64x64 crops: what encoding at the picture's own size costs or gains.

    python benchmarks/anysize_seams.py PHOTO [PHOTO ...] [-w WEIGHTS]

Each photo is cut to a multiple of 64 (top-left part kept), then (a) encoded and decoded whole,
as `autoenc encode` does, and (b) cut into 64x64 crops, each encoded and decoded alone. Prints
the PSNR of both: (a) much lower than (b) would mean the weights do not carry over to large
pictures (or seams, which a single pass cannot have). Prints a markdown table for docs/latents.md.
"""

import argparse
from pathlib import Path

import numpy as np

from autoenc_cli.codec import decode_latents, decode_picture, encode_images, encode_picture, read_picture
from autoenc_cli.latentfile import Latent
from autoenc_cli.metrics import psnr_per_image
from autoenc_cli.weights import load_model, resolve_weights


def whole_and_crops(model, pixels: np.ndarray) -> tuple[float, float]:
    h, w = pixels.shape[0] // 64 * 64, pixels.shape[1] // 64 * 64
    big = np.ascontiguousarray(pixels[:h, :w])
    whole = decode_picture(model, Latent(encode_picture(model, big), (w, h)))
    crops = big.reshape(h // 64, 64, w // 64, 64, 3).swapaxes(1, 2).reshape(-1, 64, 64, 3)
    rec = decode_latents(model, np.ascontiguousarray(encode_images(model, crops)))
    return psnr_per_image(whole[None], big[None]).item(), psnr_per_image(rec, crops).mean().item()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("-w", "--weights", type=Path, default=None, help="default: the bundled weights")
    args = ap.parse_args(argv)
    weights = resolve_weights(args.weights)
    model, _ = load_model(weights)
    print(f"weights: {weights}\n")
    print("| photo | size used | whole, dB | mean of 64x64 crops, dB | difference, dB |")
    print("|---|---|---:|---:|---:|")
    for photo in args.photos:
        pixels = read_picture(photo)
        if min(pixels.shape[:2]) < 64:
            print(f"| {photo.name} | smaller than 64x64: skipped | | | |")
            continue
        whole, crops = whole_and_crops(model, pixels)
        h, w = pixels.shape[0] // 64 * 64, pixels.shape[1] // 64 * 64
        print(f"| {photo.name} | {w}x{h} | {whole:.2f} | {crops:.2f} | {whole - crops:+.2f} |")


if __name__ == "__main__":
    main()
