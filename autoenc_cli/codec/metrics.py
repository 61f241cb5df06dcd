"""Image quality on 8-bit pixels: MSE, PSNR (per image, then averaged), SSIM.

SSIM is written here rather than taken from scikit-image (a runtime dependency of tens of MB with
SciPy) because it is 25 lines; tests/test_eval.py checks it against scikit-image's to 1e-6."""

import numpy as np
import torch


def mse_per_image(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> torch.Tensor:
    """N x ... uint8 pairs -> N mean squared errors in 8-bit levels."""
    a, b = (v.double() if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v, dtype=np.float64)) for v in (a, b))
    return ((a - b) ** 2).flatten(1).mean(1)


def psnr_per_image(a, b) -> torch.Tensor:
    """PSNR in dB against a peak of 255; identical images are capped at 100 dB."""
    return psnr_of_mse(mse_per_image(a, b))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _valid_blur_matrix(n: int, window: torch.Tensor) -> torch.Tensor:
    """(n - k + 1) x n banded matrix: row i holds the window at columns i..i+k-1 (a 'valid' 1-D filter)."""
    k = len(window)
    m = torch.zeros(max(n - k + 1, 0), n, dtype=torch.float64)
    for i in range(n - k + 1):
        m[i, i:i + k] = window
    return m


def ssim_per_image(a, b) -> torch.Tensor:
    """Single-scale SSIM (Wang et al. 2004: 11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03, L 255).

    N x H x W x 3 uint8 -> N values: the SSIM map over valid windows (no padding: the map is
    (H-10) x (W-10)), averaged over pixels and channels. Matches scikit-image's
    structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255).
    """
    x, y = (v.double() if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v, dtype=np.float64)) for v in (a, b))
    return ssim_map(x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2)).flatten(1).mean(1)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """N x C x H x W float64 pairs -> the N x C x (H-10) x (W-10) SSIM map of ssim_per_image."""
    g = _gaussian_window()
    rows, cols = _valid_blur_matrix(x.shape[2], g), _valid_blur_matrix(x.shape[3], g)
    if not len(rows) or not len(cols):
        raise ValueError(f"SSIM needs images of at least {len(g)}x{len(g)} pixels")

    def blur(t):  # separable Gaussian over valid windows, as two batched matrix products (fast in float64)
        return rows @ t @ cols.T

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def ssim_picture(a: np.ndarray, b: np.ndarray, block: int = 256) -> float:
    """ssim_per_image of one H x W x 3 uint8 pair of any size, in blocks whose windows overlap by the Gaussian's
    width, so that the blur matrices stay block-sized: at once, a 48-megapixel photo took 100 s and 800 MB for
    an 8,000 x 8,000 column matrix alone; in blocks of 256, seconds and a few MB."""
    h, w = a.shape[:2]
    edge = len(_gaussian_window()) - 1
    total, count = 0.0, 0
    for top in range(0, max(h - edge, 1), block):
        for left in range(0, max(w - edge, 1), block):
            rows, cols = slice(top, min(top + block + edge, h)), slice(left, min(left + block + edge, w))
            x, y = (torch.from_numpy(np.asarray(v[rows, cols], dtype=np.float64)).permute(2, 0, 1)[None] for v in (a, b))
            part = ssim_map(x, y)
            total, count = total + part.sum().item(), count + part.numel()
    return total / count


def squared_error(original: np.ndarray, reconstruction: np.ndarray, band_rows: int = 256) -> torch.Tensor:
    """H x W x 3 uint8 pair -> H x W float32 squared error in 8-bit levels, averaged over the channels; in bands
    of rows, so that memory stays the map's (4 bytes a pixel), not three float copies of a big picture."""
    error = torch.empty(original.shape[:2], dtype=torch.float32)
    for top in range(0, original.shape[0], band_rows):
        rows = slice(top, top + band_rows)
        diff = original[rows].astype(np.float32) - reconstruction[rows].astype(np.float32)
        error[rows] = torch.from_numpy((diff * diff).mean(-1))
    return error


def psnr_of_mse(mse):
    """PSNR in dB of mean squared errors in 8-bit levels (a float, or a tensor of them); 0 error gives 100 dB."""
    if not isinstance(mse, torch.Tensor):
        return float(psnr_of_mse(torch.tensor(float(mse), dtype=torch.float64)))
    return torch.where(mse > 0, 10 * torch.log10(255.0**2 / mse.clamp_min(1e-10)), torch.full_like(mse, 100.0))


def picture_scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, torch.Tensor]:
    """MSE, PSNR and SSIM of one H x W x 3 uint8 pair of any size, as the per-image functions give them, and
    the squared-error map; memory stays a few bytes a pixel (the per-image functions hold float64 copies)."""
    error = squared_error(a, b)
    mse = error.double().mean().item()
    return mse, psnr_of_mse(mse), ssim_picture(a, b), error
