"""The network's layer table, measured from the model itself, and a picture of it drawn with Pillow.

Rows follow the seed's layers: a TNNetConvolution is a convolution and its ReLU in one row.
"""

from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from autoenc_cli.model.autoencoder import IMAGE_SIZE, Autoencoder


@dataclass
class Layer:
    part: str  # input, encoder, latent, decoder, output
    layer: str  # what it does, in words
    seed: str  # the CAI Neural API class it stands for
    shape: tuple[int, int, int]  # output height, width, channels
    params: int
    macs: int  # multiply-accumulates for one picture


def _conv_words(m: nn.Conv2d, relu: bool) -> tuple[str, str]:
    k, s = m.kernel_size[0], m.stride[0]
    words = f"conv {k}x{k}" + (f" stride {s}" if s > 1 else "") + f", {m.out_channels}" + ("" if m.bias is None else " + bias")
    if relu:
        return words + ", ReLU", "TNNetConvolution"
    return words + ", linear", "TNNetConvolutionLinear"


def layer_table(channel_multiplier: int = 1, size: int = IMAGE_SIZE, latent: str = "relu") -> list[Layer]:
    """Every layer's output shape, parameters and multiply-accumulates for one size x size picture."""
    model = Autoencoder(channel_multiplier, latent=latent)
    x = torch.zeros(1, 3, size, size)
    rows = [Layer("input", "pixels as v/64 - 2", "input", (size, size, 3), 0, 0)]
    with torch.no_grad():
        for part, seq in (("encoder", model.encoder), ("decoder", model.decoder)):
            mods = list(seq)
            i = 0
            while i < len(mods):
                m = mods[i]
                x = m(x)
                h, w, c = x.shape[2], x.shape[3], x.shape[1]
                if isinstance(m, nn.Conv2d):
                    relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
                    if relu:
                        x = mods[i + 1](x)
                        i += 1
                    words, seed = _conv_words(m, relu)
                    params = sum(p.numel() for p in m.parameters())
                    macs = h * w * c * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                    rows.append(Layer(part, words, seed, (h, w, c), params, macs))
                elif isinstance(m, nn.PixelShuffle):
                    rows.append(Layer(part, "depth-to-space x2", "TNNetUpsample", (h, w, c), 0, 0))
                elif isinstance(m, nn.Hardtanh):
                    rows.append(Layer("output", f"clamp to {m.min_val:g}..{m.max_val:g}", "TNNetReLUL(-40, 40)", (h, w, c), 0, 0))
                else:
                    raise TypeError(f"layer_table does not know {type(m).__name__}")
                i += 1
            if part == "encoder":
                rows[-1].part = "latent"
    return rows


def markdown_table(rows: list[Layer]) -> str:
    lines = ["| # | part | layer | seed class | output (H x W x C) | parameters | MACs |", "|---|---|---|---|---|---:|---:|"]
    for i, r in enumerate(rows):
        shape = "x".join(map(str, r.shape))
        lines.append(f"| {i} | {r.part} | {r.layer} | {r.seed} | {shape} | {r.params:,} | {r.macs:,} |")
    lines.append(f"| | **total** | | | | **{sum(r.params for r in rows):,}** | **{sum(r.macs for r in rows):,}** |")
    return "\n".join(lines)


def font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


COLORS = {"input": "#9e9e9e", "encoder": "#4c78a8", "latent": "#f58518", "decoder": "#54a24b", "output": "#9e9e9e"}


def diagram(rows: list[Layer]) -> Image.Image:
    """One block per layer, left to right: block height follows the picture's side, block width the channels."""
    unit, gap, top, label_h = 4, 16, 96, 190
    small, title = font(12), font(18)
    widths = [max(3, r.shape[2] // 4) for r in rows]
    tallest = max(r.shape[0] for r in rows) * unit
    width = max(sum(widths) + gap * (len(rows) + 1), 640)
    img = Image.new("RGB", (width, top + tallest + label_h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((gap, 10), "autoenc: the seed's convolutional autoencoder", fill="black", font=title)
    draw.text((gap, 36), "block height = picture side, block width = channels; labels: H x W x C", fill="#555555", font=small)
    for i, part in enumerate(("encoder", "latent", "decoder")):
        x0 = gap + i * 100
        draw.rectangle([x0, 58, x0 + 14, 72], fill=COLORS[part], outline="black")
        draw.text((x0 + 20, 58), part, fill="black", font=small)
    mid = top + tallest // 2
    x = gap
    for r, w in zip(rows, widths):
        h = r.shape[0] * unit
        draw.rectangle([x, mid - h // 2, x + w, mid + h // 2], fill=COLORS[r.part], outline="black")
        text = f"{r.shape[0]}x{r.shape[1]}x{r.shape[2]}  {r.layer.split(',')[0]}"
        label = Image.new("RGBA", (int(draw.textlength(text, font=small)) + 4, 16), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((0, 0), text, fill="black", font=small)
        rotated = label.rotate(90, expand=True)
        img.paste(rotated, (x + w // 2 - 8, top + tallest + 8), rotated)
        x += w + gap
    return img
