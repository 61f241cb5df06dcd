"""The seed's autoencoder (CAI Neural API "VisualAutoencoder"), one line per layer.

64x64x3 pixels -> 4x4x128 latent (2,048 numbers) -> 64x64x3 pixels.
Every 3x3 convolution is followed by ReLU, as TNNetConvolution is in the original.
"""

import torch
from torch import nn

from autoenc_cli.model.choices import DOWNSCALE, LATENT_CHANNELS, LATENTS  # noqa: F401 (their home is choices.py)
from autoenc_cli.model.kernels import DepthToSpace, Layers

IMAGE_SIZE = 64  # the seed's input side; the network itself is fully convolutional


def encode_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (any layout) -> network input: a byte v becomes v/64 - 2, in [-2, 2)."""
    return pixels.float() / 64.0 - 2.0


def decode_pixels(x: torch.Tensor) -> torch.Tensor:
    """Network output -> uint8 pixels: (x + 2) * 64, rounded and clipped to 0..255."""
    return ((x.float() + 2.0) * 64.0).round().clamp(0, 255).to(torch.uint8)


def conv(c_in: int, c_out: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=bias)


class Autoencoder(nn.Module):
    def __init__(self, channel_multiplier: int = 1, color: str = "rgb", latent: str = "relu"):
        super().__init__()
        if latent not in LATENTS:
            raise ValueError(f"latent {latent!r}: use {' or '.join(LATENTS)}")
        w = channel_multiplier  # the seed's NeuronMultiplier: every hidden layer's channels x w; 2 is its "big network"
        self.channel_multiplier = channel_multiplier
        self.color = color  # the pixel encoding it works in (color.to_network): rgb, or lab
        self.latent = latent
        # A linear latent drops the ReLU after the last encoder convolution: the seed's clamps 37% of the latent's
        # values to 0, and a channel pushed negative (no bias there) never comes back. Same tensors.
        latent_activation = [nn.ReLU()] if latent == "relu" else []
        self.encoder = Layers(  # Layers: nn.Sequential, running conv + ReLU as one kernel where it can
            conv(3, 32 * w, stride=2), nn.ReLU(),  # 32x32
            conv(32 * w, 32 * w), nn.ReLU(),
            conv(32 * w, 32 * w, stride=2), nn.ReLU(),  # 16x16
            conv(32 * w, 32 * w), nn.ReLU(),
            conv(32 * w, 64 * w, stride=2, bias=True), nn.ReLU(),  # 8x8, the only biased convs
            conv(64 * w, 64 * w, bias=True), nn.ReLU(),
            conv(64 * w, 128 * w, stride=2), nn.ReLU(),  # 4x4
            conv(128 * w, 128 * w), *latent_activation,  # latent: 4x4x128
        )
        self.decoder = Layers(
            DepthToSpace(), conv(32 * w, 128 * w), nn.ReLU(),  # 8x8 (TNNetUpsample = depth-to-space = PixelShuffle(2))
            conv(128 * w, 128 * w), nn.ReLU(),
            DepthToSpace(), conv(32 * w, 32 * w), nn.ReLU(),  # 16x16
            conv(32 * w, 128 * w), nn.ReLU(),
            DepthToSpace(), conv(32 * w, 32 * w), nn.ReLU(),  # 32x32
            conv(32 * w, 128 * w), nn.ReLU(),
            DepthToSpace(), conv(32 * w, 32 * w), nn.ReLU(),  # 64x64
            conv(32 * w, 32 * w), nn.ReLU(),
            nn.Conv2d(32 * w, 3, 1, bias=True),  # TNNetConvolutionLinear: no activation
            nn.Hardtanh(-40.0, 40.0),  # TNNetReLUL(-40, +40): overflow guard
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    @property
    def latent_channels(self) -> int:
        return LATENT_CHANNELS * self.channel_multiplier

    @property
    def to_pixels(self) -> nn.Conv2d:
        """The last convolution (1x1, linear): the one layer whose output is pixels."""
        return self.decoder[-2]


def swap_relus(model: Autoencoder, slope: float) -> list[nn.LeakyReLU]:
    """Make the model's ReLUs LeakyReLUs with this negative slope, or plain ReLUs again at slope 0.

    Dead ReLUs are the weak point of this deep plain-ReLU stack (the first bundled weights had
    lost 48 of their 128 latent channels): a negative slope early in training keeps gradients
    flowing through them. Training anneals the slope to 0, where the network is exactly the
    seed's again (and its faster plain-ReLU kernels come back). Returns the leaky ones.
    """
    leaky = []
    for seq in (model.encoder, model.decoder):
        for i, layer in enumerate(seq):
            if isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
                seq[i] = nn.LeakyReLU(slope) if slope > 0 else nn.ReLU()
                if slope > 0:
                    leaky.append(seq[i])
    return leaky


def relu_slope(model: Autoencoder) -> float:
    """The negative slope of the model's ReLUs: 0 for the seed's plain ReLUs."""
    return next((m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)), 0.0)


def latent_shape(height: int, width: int, channel_multiplier: int = 1) -> tuple[int, int, int]:
    return (LATENT_CHANNELS * channel_multiplier, height // DOWNSCALE, width // DOWNSCALE)


def init_weights(model: Autoencoder) -> None:
    """Kaiming-normal (fan_in, ReLU gain) convolutions, zero biases.

    PyTorch's default init shrinks the signal by ~1/sqrt(3) per layer: through 17
    layers the output starts near zero and the early steps are wasted.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    last = model.to_pixels
    nn.init.kaiming_normal_(last.weight, nonlinearity="linear")
