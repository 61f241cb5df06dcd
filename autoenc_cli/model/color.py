"""The network's pixel encodings: RGB (the default) and CIE L*a*b* (the seed's LAB option).

rgb: a byte v becomes v/64 - 2, in [-2, 2) (model.encode_pixels).
lab: sRGB (D65) -> CIE L*a*b* with the standard formulas, then each channel as its 8-bit LAB value
     (L * 255/100; a and b as they are, about -128..127) divided by 64, minus 2 for L: again [-2, 2).
Whatever the encoding, callers hand in and get back uint8 RGB; PSNR is always measured on those.
"""

import torch


from autoenc_cli.errors import AutoencError
from autoenc_cli.model.autoencoder import decode_pixels, encode_pixels
from autoenc_cli.model.choices import COLORS


# sRGB linear -> XYZ, D65 white (IEC 61966-2-1), and the D65 reference white
RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                           [0.2126729, 0.7151522, 0.0721750],
                           [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
XYZ_TO_RGB = torch.linalg.inv(RGB_TO_XYZ)
WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
DELTA = 6 / 29


def check_color(color: str) -> str:
    if color not in COLORS:
        raise AutoencError(f"--color {color!r}: use rgb or lab")
    return color


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix along the channel axis (dim 1) of an N x 3 x H x W tensor, in full precision."""
    with torch.autocast(x.device.type, enabled=False):
        return torch.einsum("ij,njhw->nihw", matrix.to(x), x)


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(x)[None, :, None, None]


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


BYTE_TO_LINEAR = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255).float()  # a lookup for uint8 input


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W sRGB in [0, 1] -> L* (0..100), a*, b*."""
    return linear_to_lab(srgb_to_linear(rgb))


def linear_to_lab(linear: torch.Tensor) -> torch.Tensor:
    xyz = _mix(RGB_TO_XYZ, linear) / _per_channel(WHITE, linear)
    f = torch.where(xyz > DELTA ** 3, xyz.clamp_min(DELTA ** 3) ** (1 / 3), xyz / (3 * DELTA ** 2) + 4 / 29)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W L*a*b* -> sRGB, clipped to [0, 1] (colours outside the sRGB gamut are clipped)."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], 1)
    xyz = torch.where(f > DELTA, f ** 3, 3 * DELTA ** 2 * (f - 4 / 29)) * _per_channel(WHITE, lab)
    linear = _mix(XYZ_TO_RGB, xyz).clamp(0, 1)
    return torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def lab_encode(lab: torch.Tensor) -> torch.Tensor:
    """L*a*b* -> network units: L * 2.55 / 64 - 2 and a / 64, b / 64, all about [-2, 2)."""
    return torch.stack([lab[:, 0] * (2.55 / 64) - 2, lab[:, 1] / 64, lab[:, 2] / 64], 1)


def lab_decode(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([(x[:, 0] + 2) * (64 / 2.55), x[:, 1] * 64, x[:, 2] * 64], 1)


def to_network(pixels: torch.Tensor, color: str = "rgb") -> torch.Tensor:
    """uint8 N x 3 x H x W RGB -> float network input in the given encoding."""
    if color == "rgb":
        return encode_pixels(pixels)
    return lab_encode(linear_to_lab(BYTE_TO_LINEAR.to(pixels.device)[pixels.long()]))


def from_network(x: torch.Tensor, color: str = "rgb") -> torch.Tensor:
    """Network output in the given encoding -> uint8 N x 3 x H x W RGB."""
    if color == "rgb":
        return decode_pixels(x)
    return (lab_to_rgb(lab_decode(x.float())) * 255).round().clamp(0, 255).to(torch.uint8)


def rgb_units_to_lab_units(x: torch.Tensor) -> torch.Tensor:
    """RGB network units (v/64 - 2) -> LAB network units, without rounding to bytes."""
    return lab_encode(rgb_to_lab(((x.float() + 2) * (64 / 255)).clamp(0, 1)))


def lab_units_to_rgb_units(x: torch.Tensor) -> torch.Tensor:
    """LAB network units -> RGB network units (v/64 - 2), v unrounded."""
    return lab_to_rgb(lab_decode(x.float())) * (255 / 64) - 2
