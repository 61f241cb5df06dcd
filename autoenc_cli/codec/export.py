"""Export weights to ONNX, so that other runtimes (onnxruntime, TensorRT, a browser) run the network.

The contract of every exported model, also written in its metadata_props (docs/export.md):
- pixels: float32 N x 3 x H x W, sRGB in [0, 1], channels R, G, B (a byte v is v / 255), clipped to [0, 1].
  H and W multiples of 16, else the runtime refuses them (pad first, as autoenc does: mirror reflection).
- latent: float32 N x C x H/16 x W/16, C = 128 x the channel multiplier: the network's own, the array `autoenc encode` writes.
- reconstruction: float32 N x 3 x H x W, sRGB in [0, 1], clamped; round(255 x value) are the bytes `autoenc
  decode` writes (but where a value lands within float rounding of halfway between two levels).
- Batch, height and width are dynamic. The weights' colour encoding (rgb or lab) is inside: all speak RGB.
Parts: encoder (pixels -> latent), decoder (latent -> reconstruction), autoencoder (pixels -> reconstruction).
Exporting needs onnx and onnxscript, running needs onnxruntime: ONNX_INSTALL.
"""

import json
import logging
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from autoenc_cli import __version__
from autoenc_cli.model.color import lab_units_to_rgb_units, rgb_units_to_lab_units
from autoenc_cli.errors import AutoencError
from autoenc_cli.fileio import write_bytes_atomic
from autoenc_cli.model.kernels import DepthToSpace
from autoenc_cli.model.autoencoder import DOWNSCALE
from autoenc_cli.model.weights import fingerprint, load_model

PARTS = ("encoder", "decoder", "autoencoder")
NAMES = {"encoder": ("pixels", "latent"), "decoder": ("latent", "reconstruction"), "autoencoder": ("pixels", "reconstruction")}
# readable names for the dynamic sizes of each input and output (the exporter's are 16*rows, s39, ...)
SIZE_NAMES = {"pixels": ("batch", "height", "width"), "reconstruction": ("batch", "height", "width"),
              "latent": ("batch", "height/16", "width/16")}
SIZE_CHECK = "pixels_height_and_width_must_be_multiples_of_16"  # the name onnxruntime's error gives for other sizes
PIXELS = ("float32 N x 3 x H x W sRGB in [0, 1], channels R, G, B (a byte v is v/255); H and W multiples of 16; "
          "inputs clipped to [0, 1], outputs clamped to [0, 1]: round(255 x value) are autoenc decode's bytes")


ONNX_INSTALL = "pip install 'autoenc[onnx]' (in a clone of autoenc: pip install -e '.[onnx]')"


def require_onnx() -> None:
    try:
        import onnx  # noqa: F401  torch's exporter builds the model with onnxscript, as an onnx protobuf
        import onnxscript  # noqa: F401
    except ImportError:
        raise AutoencError(f"autoenc export needs onnx and onnxscript: {ONNX_INSTALL}") from None


def check_part(part: str) -> str:
    if part in PARTS:
        return part
    raise AutoencError(f"--part {part!r}: use {', '.join(PARTS)}")


def plain_layers(layers: nn.Sequential) -> nn.Sequential:
    """The same modules in a plain nn.Sequential: Layers would trace its fused oneDNN kernel and DepthToSpace
    its autograd function, neither of which ONNX knows; PixelShuffle becomes ONNX's DepthToSpace."""
    return nn.Sequential(*[nn.PixelShuffle(2) if isinstance(m, DepthToSpace) else m for m in layers])


class RgbGraph(nn.Module):
    """One part of the network between [0, 1] RGB and latents: the path codec.encode_images and decode_latents
    take from bytes (color.to_network and from_network in the model's encoding), written out for floats in [0, 1]."""

    def __init__(self, model: nn.Module, part: str):
        super().__init__()
        self.encoder = plain_layers(model.encoder) if check_part(part) != "decoder" else None
        self.decoder = plain_layers(model.decoder) if part != "encoder" else None
        self.lab = getattr(model, "color", "rgb") == "lab"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoder is not None:
            # a no-op that runtimes refuse unless H and W are multiples of 16 (the node SIZE_CHECK): the strided
            # convolutions would take other sizes, and give latents that autoenc never makes
            n, _, h, w = x.shape
            x = x.reshape(n, 3, h // DOWNSCALE, DOWNSCALE, w // DOWNSCALE, DOWNSCALE).reshape(n, 3, h, w)
            x = x.clamp(0, 1) * (255 / 64) - 2  # encode_pixels of the byte 255 x
            x = self.encoder(rgb_units_to_lab_units(x) if self.lab else x)
        if self.decoder is not None:
            x = self.decoder(x)
            x = lab_units_to_rgb_units(x) if self.lab else x
            x = ((x + 2) * (64 / 255)).clamp(0, 1)  # decode_pixels / 255, without its rounding to bytes
        return x


def trace_onnx(graph: RgbGraph, part: str, latent_channels: int):
    """The ONNX ModelProto of one part, with a dynamic batch and size (traced at batch 2: 1 would be fixed)."""
    batch, rows, cols = torch.export.Dim("batch", min=1), torch.export.Dim("rows", min=1), torch.export.Dim("cols", min=1)
    if part == "decoder":
        example, sizes = torch.zeros(2, latent_channels, 4, 4), {0: batch, 2: rows, 3: cols}
    else:  # pixels: 16 x the latent's rows and columns, so only multiples of 16 are accepted
        example, sizes = torch.zeros(2, 3, 4 * DOWNSCALE, 4 * DOWNSCALE), {0: batch, 2: DOWNSCALE * rows, 3: DOWNSCALE * cols}
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)  # "torchvision is not installed" and the like: not the user's concern
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, (example,), dynamo=True, dynamic_shapes=(sizes,), verbose=False,
                                        input_names=[NAMES[part][0]], output_names=[NAMES[part][1]])
    finally:
        onnx_logger.setLevel(level)
    return program.model_proto


def name_sizes(proto) -> None:
    """Rename the exporter's size symbols to SIZE_NAMES, on the inputs and outputs and wherever else they occur,
    and the reshape that checks the pixels' size to SIZE_CHECK."""
    for node in proto.graph.node:
        if node.op_type == "Reshape" and node.input[0] == "pixels":
            node.name = SIZE_CHECK
    renamed = {}
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        renamed.update({dims[axis].dim_param: name for axis, name in zip((0, 2, 3), SIZE_NAMES[value.name], strict=True)})
    for value in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renamed:  # only then: setting dim_param clears a fixed size (dim_value, its protobuf oneof)
                dim.dim_param = renamed[dim.dim_param]


def describe(value) -> str:
    """'pixels [batch, 3, height, width]'"""
    return f"{value.name} [{', '.join(d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim)}]"


def metadata(part: str, signature: str, channels: int, weights_path: Path, meta: dict[str, str]) -> dict[str, str]:
    return {"format": "autoenc-onnx", "format_version": "1", "autoenc_version": __version__, "part": part,
            "signature": signature, "pixels": PIXELS,
            "latent": f"float32 N x {channels} x H/16 x W/16: the network's latent, the array autoenc encode writes",
            "weights": json.dumps(fingerprint(weights_path)),  # file and sha256, as a latent's sidecar names them
            "weights_config": json.dumps({k: v for k, v in meta.items() if k != "provenance"}, sort_keys=True),
            "provenance": meta.get("provenance", "{}")}


class Exported(NamedTuple):
    path: Path
    part: str
    signature: str  # 'pixels [batch, 3, height, width] -> latent [batch, 128, height/16, width/16]'
    size_bytes: int
    meta: dict  # the weights'


def export_onnx(weights_path: Path, output: Path, part: str = "autoencoder") -> Exported:
    """Write one part of the network in weights_path to output (atomically) as ONNX; see the module's contract."""
    require_onnx()
    import onnx
    model, meta = load_model(weights_path)
    proto = trace_onnx(RgbGraph(model, part).eval(), part, model.latent_channels)
    name_sizes(proto)
    signature = f"{describe(proto.graph.input[0])} -> {describe(proto.graph.output[0])}"
    for key, value in metadata(part, signature, model.latent_channels, Path(weights_path), meta).items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"autoenc {part}, {signature}. Pixels: {PIXELS}."
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    write_bytes_atomic(output, data)
    return Exported(Path(output), part, signature, len(data), meta)
