"""`autoenc info FILE`: what a weights file, training state, latent, latent stack or ONNX model holds, as rich tables."""

import json
import os
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from autoenc_cli.model.architecture import layer_table
from autoenc_cli.training.checkpoint import read_state
from autoenc_cli.errors import AutoencError, counted
from autoenc_cli.fileio import open_regular, read_regular
from autoenc_cli.codec.latentfile import NPY_MAGIC, bits_per_pixel, is_sidecar, load_latent, npy_header, sidecar_path
from autoenc_cli.codec.stack import read_stack_sidecar
from autoenc_cli.codec.stack import sidecar as stack_sidecar
from autoenc_cli.model.autoencoder import LATENT_CHANNELS, relu_slope
from autoenc_cli.model.weights import (FORMAT, barely_trained_psnr, default_weights_path, fingerprint, load_model, provenance,
                                       read_metadata, resolve_weights)

NETWORK_NAMES = {1: " (the seed's network)", 2: " (the seed's big network)"}


def kind_of(path: Path) -> str:
    """'latent', 'weights', 'state' or 'onnx', or AutoencError naming the file."""
    if path.is_dir():
        raise AutoencError(f"{path}: is a directory (give a weights .safetensors or a latent .npy)")
    with open_regular(path) as f:  # a FIFO or a device is refused before it is read
        head = f.read(len(NPY_MAGIC))
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if head == NPY_MAGIC:
        return "latent"
    try:
        meta = read_metadata(path)
    except AutoencError:
        raise AutoencError(f"{path}: neither autoenc weights (.safetensors) nor a latent (.npy)") from None
    if meta.get("format") == FORMAT:
        return "weights"
    if "info" in meta and "param_groups" in meta:
        return "state"
    raise AutoencError(f"{path}: a safetensors file without autoenc metadata (not made by autoenc train)")


def table(title: str, rows: list[tuple[str, str]]) -> Table:
    t = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for key, value in rows:
        t.add_row(escape(key), escape(value))  # shapes, paths and provenance hold brackets: text, not markup
    return t


def shown_value(value) -> str:
    """A provenance or settings value as a person reads it, not as a Python literal (None, True, {'file': ...})."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        if set(value) == {"file", "sha256"}:  # weights named by their file and fingerprint
            return f"{value['file']} (sha256 {str(value['sha256'])[:12]})"
        return ", ".join(f"{k} {shown_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(shown_value(v) for v in value) or "none"
    return str(value)


def values_table(title: str, values: dict) -> Table:
    return table(title, [(k, shown_value(v)) for k, v in sorted(values.items())] or [("", "none recorded")])


def layers_table(channel_multiplier: int, latent: str = "relu") -> Table:
    t = Table(title="layers (one 64x64 picture)", title_justify="left")
    for name in ("#", "part", "layer", "output H x W x C", "parameters", "MACs"):
        t.add_column(name, justify="right" if name in ("#", "parameters", "MACs") else "left")
    for i, r in enumerate(layer_table(channel_multiplier, latent=latent)):
        t.add_row(str(i), r.part, r.layer, "x".join(map(str, r.shape)), f"{r.params:,}", f"{r.macs:,}")
    return t


def same_file_as_default(sha256: str | None) -> bool:
    default = default_weights_path()
    return bool(sha256 and default and fingerprint(default)["sha256"] == sha256)


def recipe_phase(model, prov: dict) -> str:
    """Which part of the training recipe the weights were saved in."""
    slope = relu_slope(model)
    if slope > 0:
        return (f"saved during the leaky-ReLU phase (slope {slope:.3f}; runs as saved, "
                "but is not yet the seed's plain-ReLU network)")
    parent = prov.get("parent")
    start = f"fine-tuned from {parent.get('file')} (sha256 {str(parent.get('sha256'))[:12]})" if isinstance(parent, dict) else "trained"
    psnr = barely_trained_psnr(prov)
    early = f"; barely trained: {psnr:.1f} dB on validation at step {prov.get('steps', '?')}" if psnr is not None else ""
    network = "the seed's network" if model.latent == "relu" else "the seed's, with a linear latent"
    return f"{start}; plain ReLUs ({network}){early}"


def describe_weights(path: Path, layers: bool = False) -> Group:
    model, meta = load_model(path)
    params = sum(p.numel() for p in model.parameters())
    channels = model.latent_channels
    sha = fingerprint(path)["sha256"]
    rows = [
        ("file", f"{path} ({path.stat().st_size:,} bytes)" + (", the bundled default" if same_file_as_default(sha) else "")),
        ("sha256", sha),
        ("format", f"{meta.get('format')} version {meta.get('format_version')}"),
        ("network", f"channel multiplier {model.channel_multiplier}{NETWORK_NAMES.get(model.channel_multiplier, '')}, {params:,} parameters"),
        ("input", f"{meta.get('input_size')}x{meta.get('input_size')} trained; any size encodes (padded to a multiple of 16)"),
        ("latent", f"({channels}, H/16, W/16): {channels * 16:,} numbers for a 64x64 picture; "
                   + ("ReLU after the last encoder convolution (the seed's)" if model.latent == "relu"
                      else "linear (no ReLU after the last encoder convolution)")),
        ("pixels", f"{meta.get('pixel_encoding')}, colour {meta.get('color')}"),
        ("phase", recipe_phase(model, provenance(meta))),
    ]
    parts = [table("weights", rows), values_table("provenance", provenance(meta))]
    if layers:
        parts.append(layers_table(model.channel_multiplier, model.latent))
    return Group(*parts)


def describe_state(path: Path) -> Group:
    """A training state, read and checked as --resume reads it (a truncated file is damaged here too)."""
    tensors, info, _ = read_state(path)
    step, cfg = info["step"], info["config"]
    check_network(path, tensors, cfg)
    rows = [("file", f"{path} ({path.stat().st_size:,} bytes): training state for --resume"),
            ("step", str(step)), ("training time", f"{info.get('elapsed_s', 0):.0f} s")]
    rows += [(k, shown_value(v)) for k, v in sorted(cfg.items())]
    return Group(table("training state", rows))


def check_network(path: Path, tensors: dict, cfg: dict) -> None:
    """The state's model tensors are those of the network its config names (shapes only: built on no device)."""
    import torch

    from autoenc_cli.model.autoencoder import Autoencoder
    multiplier = cfg.get("channel_multiplier", cfg.get("width", 1))
    if type(multiplier) is not int or not 1 <= multiplier <= 16:
        raise AutoencError(f"{path}: damaged training state (channel multiplier {multiplier!r})")
    with torch.device("meta"):
        expected = {f"model.{k}": tuple(v.shape) for k, v in Autoencoder(multiplier).state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items() if k.startswith("model.")}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected[k])
        raise AutoencError(f"{path}: damaged training state (tensor {wrong[0][6:]} does not fit channel multiplier {multiplier})")


def describe_latent(path: Path) -> Group:
    latent = load_latent(path)
    w, h = latent.original_size
    pw, ph = latent.padded_size
    meta = latent.meta
    side = sidecar_path(path)
    npy_bytes, side_bytes = path.stat().st_size, side.stat().st_size if meta else 0
    bpp = bits_per_pixel(latent.values.shape, latent.stored_dtype, (w, h))
    rows = [
        ("file", f"{path} ({npy_bytes:,} bytes" + (f", sidecar {side.name} {side_bytes:,} bytes)" if meta else ", no sidecar)")),
        ("shape", f"{tuple(latent.values.shape)} (channels, height, width)"),
        ("dtype", latent.stored_dtype + (" with per-channel scales" if meta.get("scale") else "")),
        ("picture", f"{w}x{h}" + ("" if (w, h) == (pw, ph) else f" (padded to {pw}x{ph} to encode)")
         + (f", centre-cropped and resized to {meta['resize']}x{meta['resize']}" if meta.get("resize") else "")),
        ("size", f"{npy_bytes + side_bytes:,} bytes on disk, {bpp:.3g} bits per pixel (latent values)"),
        ("values", f"min {latent.values.min():.4g}, max {latent.values.max():.4g}, mean {latent.values.mean():.4g}, "
                   f"{np.mean(latent.values == 0):.0%} zeros"),
        ("encoded", refinement(meta.get("refine"))),
    ]
    made_with = meta.get("weights")
    if isinstance(made_with, dict):
        sha = made_with.get("sha256")
        rows.append(("weights", f"{made_with.get('file')}" + (" (the bundled default)" if same_file_as_default(sha) else "")))
        rows.append(("weights sha256", str(sha)))
    elif meta:
        rows.append(("weights", "not recorded"))
    else:
        rows.append(("weights", f"not recorded (no sidecar: decodes to {pw}x{ph})"))
    rows.append(("decodes with", decodable_by(latent.values.shape[0], made_with if isinstance(made_with, dict) else None)))
    return Group(table("latent", rows))


def refinement(refined) -> str:
    """How the latent was found: the encoder's one pass, or that and steps of refinement (codec/refine.py)."""
    if refined is None:
        return "the encoder's one pass"
    if not isinstance(refined, dict):
        return f"refined (unreadable record: {str(refined)[:40]})"
    steps, lr, how = refined.get("steps"), refined.get("lr"), refined.get("optimizer", "?")
    return (f"the encoder's pass, then refined {steps} steps against the decoder ({how}, rate {lr}, "
            f"{refined.get('precision', 'fp32')})")


def describe_stack(path: Path, meta: dict | None) -> Group:
    """The (N, C, H/16, W/16) array of `autoenc encode --stack` and what its sidecar lists (meta None: no sidecar)."""
    shape, dtype = npy_header(path)
    side = stack_sidecar(path)
    rows = [("file", f"{path} ({path.stat().st_size:,} bytes): the latents of {counted(shape[0], 'picture')}, "
                     "one per row (autoenc encode --stack)"),
            ("shape", f"{tuple(shape)} (pictures, channels, height, width)"), ("dtype", str(dtype))]
    if meta is None:
        rows.append(("pictures", f"not listed: no sidecar {side.name} beside it"))
    else:
        paths, skipped = meta.get("paths") or [], meta.get("skipped") or []
        rows.append(("pictures", f"listed in {side.name}, row i from paths[i]" + (f"; the first {paths[0]}" if paths else "")))
        if skipped:
            rows.append(("skipped", f"{counted(len(skipped), 'unreadable file')}, listed in {side.name}"))
        resize = meta.get("resize")
        rows.append(("picture size", f"centre-cropped and resized to {resize}x{resize}" if resize
                     else f"{shape[3] * 16}x{shape[2] * 16} once padded to a multiple of 16"))
        weights = meta.get("weights")
        rows.append(("weights", shown_value(weights) + (", the bundled default" if isinstance(weights, dict)
                                                      and same_file_as_default(weights.get("sha256")) else "")))
    rows.append(("encoded", refinement(meta.get("refine") if meta else None)))
    return Group(table("latent stack", rows))


def describe_onnx(path: Path) -> Group:
    """An ONNX model: its inputs and outputs, and what `autoenc export` wrote into its metadata."""
    try:
        import onnx
    except ImportError:
        from autoenc_cli.codec.export import ONNX_INSTALL
        raise AutoencError(f"{path}: reading ONNX models needs onnx: {ONNX_INSTALL}") from None
    data = read_regular(path, "ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends: any unreadable file  # noqa: BLE001
        raise AutoencError(f"{path}: not an ONNX model onnx can read ({type(e).__name__})") from None
    if not model.ir_version or not model.opset_import or not model.graph.node:
        # protobuf reads an empty file, and many others, as a message with nothing set
        raise AutoencError(f"{path}: not an ONNX model (no {'graph' if model.ir_version else 'IR version'})")
    try:
        onnx.checker.check_model(model)  # what a runtime would refuse, info refuses too
    except Exception as e:  # onnx's ValidationError, and whatever a damaged graph raises  # noqa: BLE001
        raise AutoencError(f"{path}: not a valid ONNX model ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})") from None
    meta = {p.key: p.value for p in model.metadata_props}
    made = meta.get("format") == "autoenc-onnx"
    rows = [("file", f"{path} ({len(data):,} bytes)" + ("" if made else ": not made by autoenc export")),
            ("opset", ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import))]
    rows += [(f"{kind} {value.name}", shape_of(value)) for kind, values in (("input", model.graph.input),
             ("output", model.graph.output)) for value in values]
    if made:
        weights = json_entry(meta, "weights")
        rows += [("part", meta.get("part", "?")), ("pixel format", meta.get("pixels", "?")),
                 ("weights", f"{weights.get('file')} (sha256 {weights.get('sha256')})" if weights is not None
                  else f"{meta.get('weights')!r} (not the JSON autoenc export writes)"),
                 ("exported by", f"autoenc {meta.get('autoenc_version')}")]
    parts = [table("ONNX model", rows)]
    prov = json_entry(meta, "provenance")
    if prov is None:
        parts.append(table("provenance", [("", f"{meta['provenance']!r} (not the JSON autoenc export writes)")]))
    elif prov:
        parts.append(values_table("provenance", prov))
    return Group(*parts)


def json_entry(meta: dict[str, str], key: str) -> dict | None:
    """A metadata entry that export writes as a JSON object: {} when absent, None when another tool rewrote it
    into something else (shown as it is, not a reason to refuse the model)."""
    try:
        value = json.loads(meta.get(key) or "{}")
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def shape_of(value) -> str:
    dims = value.type.tensor_type.shape.dim
    return "[" + ", ".join(d.dim_param or str(d.dim_value) for d in dims) + "]"


def decodable_by(channels: int, made_with: dict | None = None) -> str:
    """Which weights decode a latent of this many channels (128 x the channel multiplier) to its picture: those its
    sidecar names (made_with: their file and sha256) when it names them, else any of that channel multiplier."""
    multiplier, rest = divmod(channels, LATENT_CHANNELS)
    if rest or not 1 <= multiplier <= 16:
        return f"nothing: not decodable ({channels} channels; autoenc weights give 128 x their channel multiplier, 1 to 16)"
    sha = made_with.get("sha256") if made_with else None
    if sha and same_file_as_default(sha):
        return "the bundled weights, which encoded it"
    if sha:
        return (f"the weights that encoded it, {made_with.get('file')} (sha256 {str(sha)[:12]}): give decode -w that "
                "file; other weights, the bundled ones too, give a picture that does not match")
    return ("weights of channel multiplier 1, such as the bundled ones" if multiplier == 1
            else f"weights of channel multiplier {multiplier} only (the bundled ones are 1)") + \
        "; which weights encoded it is not recorded, and only those give its picture back"


def describe(path: str | os.PathLike, layers: bool = False) -> Group:
    """A rich renderable describing `path`, or AutoencError for anything that is not an autoenc file."""
    path = resolve_weights(path)  # "default": the bundled weights, as -w takes them
    if is_sidecar(path) and Path(str(path)[:-5]).is_file():
        path = Path(str(path)[:-5])  # a sidecar stands for its latent (or its stack)
    kind = kind_of(path)
    if layers and kind != "weights":
        raise AutoencError(f"{path}: --layers shows the layers of weights; this is {KIND_NAMES[kind]}")
    if kind == "weights":
        return describe_weights(path, layers)
    if kind == "state":
        return describe_state(path)
    if kind == "onnx":
        return describe_onnx(path)
    stack = read_stack_sidecar(path)
    if stack is not None or (len(shape := npy_header(path)[0]) == 4 and shape[0] != 1):
        return describe_stack(path, stack)
    return describe_latent(path)


KIND_NAMES = {"latent": "a latent", "state": "a training state", "onnx": "an ONNX model", "weights": "weights"}
