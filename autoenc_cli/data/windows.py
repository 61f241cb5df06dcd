"""Random 64x64 windows of photographs at random scales, as image-compression trainers train: cut from the pyramid
cache (pyramids.py).

A window is drawn as (picture, zoom, position, flip): zoom z is log-uniform in [1, z_max], where
z = 1 is the photo's own resolution and z_max = short side / 64 is the whole picture's short side
(or `max_zoom`, if smaller). The window is z * 64 source pixels wide; it is cut from pyramid level
floor(log2 z), where it is 64..127 pixels wide, and resized to 64x64 there (bicubic, antialiased): a whole
batch at once, by matrix products, on the GPU when the pixels live there (Photos.to).
Every draw comes from a generator seeded by (seed, epoch), so a resumed run draws the same windows.
"""

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from autoenc_cli.data.pyramids import Photos
from autoenc_cli.errors import AutoencError
from autoenc_cli.model.autoencoder import IMAGE_SIZE

PERMUTATIONS = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


@dataclass
class WindowDraws:
    """One epoch's draws, one row per window: picture, then uniform numbers for zoom, x, y, and a flip;
    for the optional augmentations a quarter-turn count and a channel order."""
    picture: torch.Tensor
    uniform: torch.Tensor  # len x 3, in [0, 1)
    flips: torch.Tensor
    turns: torch.Tensor  # 0..3 quarter turns
    channel_order: torch.Tensor  # index into PERMUTATIONS; 0 keeps RGB

    def to(self, device: torch.device) -> "WindowDraws":
        return WindowDraws(*(getattr(self, f.name).to(device) for f in fields(self)))


def draw_windows(seed: int, epoch: int, pictures: int, count: int) -> WindowDraws:
    """`count` windows for this epoch: every picture equally often (a permutation repeated), from (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    picture = torch.cat([torch.randperm(pictures, generator=g) for _ in range(-(-count // pictures))])[:count]
    uniform, flips = torch.rand(count, 3, generator=g), torch.rand(count, generator=g) < 0.5
    return WindowDraws(picture, uniform, flips, torch.randint(4, (count,), generator=g),
                       torch.randint(len(PERMUTATIONS), (count,), generator=g))


SPAN = 2 * IMAGE_SIZE  # a window is cut from a level where it is 64..128 pixels wide: SPAN x SPAN covers it


def cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic kernel with a = -0.5, the one Pillow and torch's antialiased bicubic use."""
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def resampling_weights(side: torch.Tensor) -> torch.Tensor:
    """n x 64 x SPAN: row i weighs the source pixels of output pixel i when `side` pixels shrink to 64
    (antialiased bicubic, as F.interpolate(..., antialias=True) computes it; columns from `side` on are zero).
    Used once, for RESAMPLING: every side from 64 to SPAN."""
    scale = (side.double() / IMAGE_SIZE)[:, None, None]
    center = scale * (torch.arange(IMAGE_SIZE, dtype=torch.float64, device=side.device)[None, :, None] + 0.5)
    j = torch.arange(SPAN, dtype=torch.float64, device=side.device)[None, None, :]
    first = (center - 2 * scale + 0.5).trunc().clamp(min=0)
    last = torch.minimum((center + 2 * scale + 0.5).trunc(), side.double()[:, None, None])
    w = torch.where((j >= first) & (j < last), cubic((j - center + 0.5) / scale), torch.zeros_like(j))
    return (w / w.sum(-1, keepdim=True)).float()


RESAMPLING = resampling_weights(torch.arange(IMAGE_SIZE, SPAN + 1))  # 65 x 64 x SPAN float32, 2 MB
RESAMPLING_ON: dict[torch.device, torch.Tensor] = {}  # RESAMPLING copied once to each device that cuts windows


def resampling_on(device: torch.device) -> torch.Tensor:
    if device not in RESAMPLING_ON:
        RESAMPLING_ON[device] = RESAMPLING.to(device)
    return RESAMPLING_ON[device]


def cut_window(photos: Photos, picture: int, u: list[float], max_zoom: float | None) -> torch.Tensor:
    """One 64x64x3 uint8 window on the host, as cut_windows cuts a batch on the GPU (within one level, measured:
    1 pixel value in 100,000 differs). On a CPU this is 3x faster than the batched products (4,600 against 1,500
    windows/s on one core, measured): it resizes only the side x side pixels that the window covers."""
    z_max = photos.max_zoom(picture) if max_zoom is None else min(max_zoom, photos.max_zoom(picture))
    z = math.exp(u[0] * math.log(max(1.0, z_max)))
    k = min(int(math.log2(z)), len(photos.index[picture]) - 1)
    level = photos.level(picture, k)
    h, w = level.shape[:2]
    side = min(h, w, max(IMAGE_SIZE, round(IMAGE_SIZE * z / 2 ** k)))
    top, left = int(u[2] * (h - side + 1)), int(u[1] * (w - side + 1))
    window = torch.from_numpy(np.array(level[top:top + side, left:left + side]))
    if side == IMAGE_SIZE:
        return window
    x = F.interpolate(window.permute(2, 0, 1)[None].float(), size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic",
                      antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)


def cut_windows(photos: Photos, picture: torch.Tensor, u: torch.Tensor, max_zoom: float | None) -> torch.Tensor:
    """n windows as n x 64 x 64 x 3 uint8, all at once, on the device that holds photos.pixels: the zoom
    from u[:, 0] (log-uniform), the position from u[:, 1:3]; each gathered as a SPAN x SPAN patch of its level
    and resized by two small matrix products (RESAMPLING), so nothing is cut one window at a time."""
    device = photos.table.device
    picture, u = picture.to(device), u.to(device, torch.float64)
    levels = photos.table[picture]  # n x L x 3: (first pixel, height, width) of each level
    z_max = levels[:, 0, 1:].amin(1).double() / IMAGE_SIZE
    z_max = z_max if max_zoom is None else z_max.clamp(max=max_zoom)
    z = torch.exp(u[:, 0] * torch.log(z_max.clamp(min=1.0)))
    k = torch.minimum(torch.log2(z).floor().long(), photos.depth[picture] - 1)
    first, h, w = levels[torch.arange(len(k), device=device), k].unbind(1)
    side = torch.minimum(levels.new_full(h.shape, SPAN), torch.round(IMAGE_SIZE * z / 2.0 ** k).long().clamp(min=IMAGE_SIZE))
    side = torch.minimum(side, torch.minimum(h, w))
    top, left = (u[:, 2] * (h - side + 1)).long(), (u[:, 1] * (w - side + 1)).long()
    span = torch.arange(SPAN, device=device)
    rows = torch.minimum(top[:, None] + span, h[:, None] - 1)
    cols = torch.minimum(left[:, None] + span, w[:, None] - 1)
    index = first[:, None, None] + rows[:, :, None] * w[:, None, None] + cols[:, None, :]
    patch = photos.pixels[index].permute(0, 3, 1, 2).float()  # n x 3 x SPAN x SPAN
    weights = resampling_on(device)[side - IMAGE_SIZE][:, None]  # n x 1 x 64 x SPAN
    x = weights @ patch @ weights.transpose(-1, -2)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def window_batch(photos: Photos, draws: WindowDraws, start: int, size: int, max_zoom: float | None = None,
                 turns: bool = False, channel_orders: bool = False) -> torch.Tensor:
    """Windows [start, start + size) of an epoch's draws as N x 64 x 64 x 3 uint8 (flipped where drawn; with
    `turns` also turned by quarter turns, with `channel_orders` with their RGB channels reordered)."""
    part = slice(start, start + size)
    if isinstance(photos.pixels, torch.Tensor):
        x = cut_windows(photos, draws.picture[part], draws.uniform[part], max_zoom)
    else:
        x = torch.stack([cut_window(photos, int(draws.picture[i]), draws.uniform[i].tolist(), max_zoom)
                         for i in range(start, start + size)])
    device = x.device
    x = torch.where(draws.flips[part].to(device)[:, None, None, None], x.flip(2), x)
    if turns:
        quarter = draws.turns[part].to(device)[:, None, None, None]
        x = sum(torch.where(quarter == k, torch.rot90(x, k, (1, 2)), 0) for k in range(4)).to(torch.uint8)
    if channel_orders:
        order = PERMUTATIONS.to(device)[draws.channel_order[part].to(device)]
        x = x.gather(3, order[:, None, None, :].expand_as(x))
    return x


def fixed_windows(photos: Photos, per_picture: int, max_zoom: float | None = None, seed: int = 12345) -> np.ndarray:
    """The same windows every time (a validation set): `per_picture` from each picture, N x 64 x 64 x 3 uint8."""
    if len(photos) == 0:
        raise AutoencError("no photos to cut validation windows from")
    draws = draw_windows(seed, 0, len(photos), len(photos) * per_picture)
    draws.flips[:] = False
    return window_batch(photos, draws, 0, len(draws.picture), max_zoom).cpu().numpy()
