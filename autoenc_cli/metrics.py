"""Image quality on 8-bit pixels: MSE, PSNR (per image, then averaged), SSIM."""

import numpy as np
import torch
import torch.nn.functional as F


def mse_per_image(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> torch.Tensor:
    """N x ... uint8 pairs -> N mean squared errors in 8-bit levels."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return ((a - b) ** 2).flatten(1).mean(1)


def psnr_per_image(a, b) -> torch.Tensor:
    """PSNR in dB against a peak of 255; identical images are capped at 100 dB."""
    mse = mse_per_image(a, b)
    return torch.where(mse > 0, 10 * torch.log10(255.0**2 / mse.clamp_min(1e-10)), torch.full_like(mse, 100.0))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_per_image(a, b) -> torch.Tensor:
    """Single-scale SSIM (Wang et al. 2004: 11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03, L 255).

    N x H x W x 3 uint8 -> N values: the SSIM map over valid windows, averaged over pixels and channels.
    """
    x = torch.as_tensor(a).double().permute(0, 3, 1, 2)
    y = torch.as_tensor(b).double().permute(0, 3, 1, 2)
    c = x.shape[1]
    g = _gaussian_window()
    win_h = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    win_w = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, win_h, groups=c), win_w, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)
