"""Hostile input to every public function of the Python API (issue 36), as tests/test_odd_inputs.py is for the command
line: NaN and inf, wrong dtypes and ranks, negative strides, empty and huge sizes, devices that are missing or that
autoenc does not run on, strings where arrays go, outputs that are inputs. Every case raises the exception type it
names (AutoencError for a value, TypeError for an argument of the wrong kind) with a one-line message that names the
problem, and leaves every file as it was (hashed before and after: nothing changed, nothing left behind).

Huge pictures and latents are stride-0 views (np.broadcast_to, Tensor.expand): refused before a byte is copied.
"""

import hashlib
import math
import os
import re
import pathlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import photo_like, run_cli, write_image
from PIL import Image

import autoenc_cli
from autoenc_cli import AutoencError

OVER_CAP = 8001  # 8001 x 8001 pixels: just over the 64,000,000-pixel cap


@pytest.fixture(scope="module")
def ae():
    return autoenc_cli.load()


@pytest.fixture(scope="module")
def files(tmp_path_factory, ae) -> Path:
    """A folder as a user leaves it: a photo, its latent pair, a hard and a symbolic link to the photo, a folder, a
    photo named like a sidecar, a truncated PNG, a latent holding NaN and an int8 latent without its sidecar."""
    d = tmp_path_factory.mktemp("user")
    rng = np.random.default_rng(0)
    write_image(d / "photo.png", photo_like(rng, 48)[:30, :40], format="PNG")
    ae.encode_file(d / "photo.png", d / "z.npy")
    os.link(d / "photo.png", d / "hard.png")
    (d / "sym.npy").symlink_to("photo.png")
    (d / "folder").mkdir()
    write_image(d / "a.npy.json", photo_like(rng, 16), format="PNG")  # a picture whose name is a.npy's sidecar's
    (d / "truncated.png").write_bytes((d / "photo.png").read_bytes()[:120])
    np.save(d / "nan.npy", np.full((128, 2, 2), np.nan, np.float32))
    np.save(d / "bare-int8.npy", np.ones((128, 2, 2), np.int8))
    return d


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under folder: a file's sha256, a link's target, a folder's mark (new or removed ones show too)."""
    seen = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        if p.is_symlink():
            seen[key] = "-> " + os.readlink(p)
        elif p.is_dir():
            seen[key] = "folder"
        else:
            seen[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return seen


def refused(call, kind: type, *words: str, folder: Path) -> str:
    """call() raises `kind` with a one-line message holding `words`, and changes nothing in folder."""
    before = snapshot(folder)
    with pytest.raises(Exception) as caught:  # the exact type is asserted below, with the message in view
        call()
    message = str(caught.value)
    assert type(caught.value) is kind or (kind is AutoencError and isinstance(caught.value, AutoencError)), \
        f"{type(caught.value).__name__}: {message}"
    assert message.strip() and "\n" not in message, repr(message)
    for w in words:
        assert w in message, (w, message)
    assert snapshot(folder) == before, f"files changed by: {message}"
    return message


def u8(h: int, w: int) -> np.ndarray:
    return photo_like(np.random.default_rng(h * w), max(h, w))[:h, :w]


def tensor(*shape: int, fill: float | None = None, dtype=torch.float32) -> torch.Tensor:
    t = torch.rand(*shape).to(dtype) if dtype.is_floating_point else torch.zeros(*shape, dtype=dtype)
    if fill is not None:
        t.view(-1)[0] = fill
    return t


Z = np.zeros((128, 2, 2), np.float32)  # a latent of a 32x32 picture
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")

# (id, call(ae, folder), exception, words its message holds)
MATRIX = [
    # load(): weights, device, max_memory, precision
    ("load-weights-int", lambda ae, d: autoenc_cli.load(123), TypeError, ["weights", "int"]),
    ("load-weights-missing", lambda ae, d: autoenc_cli.load(d / "none.safetensors"), AutoencError, ["none.safetensors", "no such"]),
    ("load-weights-folder", lambda ae, d: autoenc_cli.load(d / "folder"), AutoencError, ["folder", "directory"]),
    ("load-weights-photo", lambda ae, d: autoenc_cli.load(d / "photo.png"), AutoencError, ["photo.png", "not a safetensors"]),
    pytest.param("load-cuda", lambda ae, d: autoenc_cli.load(device="cuda"), AutoencError, ["device cuda", "CUDA is not available"], marks=no_cuda),
    ("load-cuda-index", lambda ae, d: autoenc_cli.load(device="cuda:99"), AutoencError, ["device cuda:99"]),  # no CUDA, or too few GPUs
    ("load-tpu", lambda ae, d: autoenc_cli.load(device="tpu"), AutoencError, ["'tpu'", "not a device"]),
    ("load-meta", lambda ae, d: autoenc_cli.load(device="meta"), AutoencError, ["'meta'", "not a device"]),
    ("load-device-float", lambda ae, d: autoenc_cli.load(device=0.5), TypeError, ["device", "float"]),
    ("load-memory-nan", lambda ae, d: autoenc_cli.load(max_memory=math.nan), AutoencError, ["max_memory nan", "finite"]),
    ("load-memory-inf", lambda ae, d: autoenc_cli.load(max_memory=math.inf), AutoencError, ["max_memory inf"]),
    ("load-memory-negative", lambda ae, d: autoenc_cli.load(max_memory=-1), AutoencError, ["max_memory -1", "at least 16"]),
    ("load-memory-tiny", lambda ae, d: autoenc_cli.load(max_memory=8), AutoencError, ["at least 16"]),
    ("load-memory-str", lambda ae, d: autoenc_cli.load(max_memory="1024"), TypeError, ["max_memory", "str"]),
    ("load-memory-bool", lambda ae, d: autoenc_cli.load(max_memory=True), TypeError, ["max_memory", "bool"]),
    ("load-precision", lambda ae, d: autoenc_cli.load(precision="fp8"), AutoencError, ["'fp8'", "fp32"]),
    ("codec-memory-set-nan", lambda ae, d: replace(ae, max_memory=math.nan).encode(u8(16, 16)), AutoencError, ["max_memory nan"]),

    # encode(): arrays
    ("encode-str", lambda ae, d: ae.encode(str(d / "photo.png")), TypeError, ["not str", "encode_file"]),
    ("encode-path", lambda ae, d: ae.encode(d / "photo.png"), TypeError, ["encode_file"]),
    ("encode-none", lambda ae, d: ae.encode(None), TypeError, ["NoneType"]),
    ("encode-list", lambda ae, d: ae.encode(u8(16, 16).tolist()), TypeError, ["not list"]),
    ("encode-float-array", lambda ae, d: ae.encode(u8(16, 16).astype(np.float32)), AutoencError, ["float32", "uint8"]),
    ("encode-uint16-array", lambda ae, d: ae.encode(u8(16, 16).astype(np.uint16)), AutoencError, ["uint16", "uint8"]),
    ("encode-bool-array", lambda ae, d: ae.encode(np.ones((16, 16, 3), bool)), AutoencError, ["bool"]),
    ("encode-gray-array", lambda ae, d: ae.encode(u8(16, 16)[..., 0]), AutoencError, ["(16, 16)", "H x W x 3"]),
    ("encode-rgba-array", lambda ae, d: ae.encode(np.zeros((16, 16, 4), np.uint8)), AutoencError, ["(16, 16, 4)"]),
    ("encode-batch-array", lambda ae, d: ae.encode(np.zeros((2, 16, 16, 3), np.uint8)), AutoencError, ["(2, 16, 16, 3)"]),
    ("encode-empty-array", lambda ae, d: ae.encode(np.zeros((0, 0, 3), np.uint8)), AutoencError, ["0x0", "nothing to encode"]),
    ("encode-no-width", lambda ae, d: ae.encode(np.zeros((5, 0, 3), np.uint8)), AutoencError, ["0x5"]),
    ("encode-huge-array", lambda ae, d: ae.encode(np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (OVER_CAP, OVER_CAP, 3))),
     AutoencError, ["8001x8001", "64,000,000-pixel limit"]),
    # encode(): PIL images
    ("encode-empty-image", lambda ae, d: ae.encode(Image.new("RGB", (0, 0))), AutoencError, ["0x0"]),
    ("encode-huge-image", lambda ae, d: ae.encode(Image.new("L", (OVER_CAP, OVER_CAP))), AutoencError, ["64,000,000-pixel limit"]),
    ("encode-truncated-image", lambda ae, d: ae.encode(Image.open(d / "truncated.png")), AutoencError, ["cannot be decoded"]),
    # encode(): tensors
    ("encode-nan-tensor", lambda ae, d: ae.encode(tensor(1, 3, 16, 16, fill=math.nan)), AutoencError, ["NaN or inf", "[0, 1]"]),
    ("encode-inf-tensor", lambda ae, d: ae.encode(tensor(1, 3, 16, 16, fill=math.inf)), AutoencError, ["NaN or inf"]),
    ("encode-bytes-as-float", lambda ae, d: ae.encode(tensor(1, 3, 16, 16, fill=255.0)), AutoencError, ["to 255", "[0, 1]"]),
    ("encode-negative-tensor", lambda ae, d: ae.encode(tensor(1, 3, 16, 16, fill=-0.5)), AutoencError, ["from -0.5"]),
    ("encode-half-nan", lambda ae, d: ae.encode(tensor(1, 3, 16, 16, fill=math.nan, dtype=torch.float16)), AutoencError, ["NaN"]),
    ("encode-int64-tensor", lambda ae, d: ae.encode(tensor(1, 3, 16, 16, dtype=torch.int64)), AutoencError, ["torch.int64", "uint8"]),
    ("encode-bool-tensor", lambda ae, d: ae.encode(tensor(1, 3, 16, 16, dtype=torch.bool)), AutoencError, ["torch.bool"]),
    ("encode-3d-tensor", lambda ae, d: ae.encode(tensor(3, 16, 16)), AutoencError, ["(3, 16, 16)", "N x 3 x H x W"]),
    ("encode-4-channels", lambda ae, d: ae.encode(tensor(1, 4, 16, 16)), AutoencError, ["(1, 4, 16, 16)"]),
    ("encode-hwc-tensor", lambda ae, d: ae.encode(tensor(1, 16, 16, 3)), AutoencError, ["(1, 16, 16, 3)"]),
    ("encode-odd-tensor", lambda ae, d: ae.encode(tensor(1, 3, 20, 20)), AutoencError, ["multiples of 16"]),
    ("encode-empty-batch", lambda ae, d: ae.encode(tensor(0, 3, 16, 16)), AutoencError, ["empty batch"]),
    ("encode-0x0-tensor", lambda ae, d: ae.encode(tensor(1, 3, 0, 0)), AutoencError, ["0x0"]),
    ("encode-huge-tensor", lambda ae, d: ae.encode(torch.zeros(1, 3, 1, 1, dtype=torch.uint8).expand(1, 3, 8016, 8016)),
     AutoencError, ["8016x8016", "pixel limit"]),

    # decode(): arrays
    ("decode-str", lambda ae, d: ae.decode(str(d / "z.npy")), TypeError, ["not str", "decode_file"]),
    ("decode-list", lambda ae, d: ae.decode(Z.tolist()), TypeError, ["not list"]),
    ("decode-int8", lambda ae, d: ae.decode(np.load(d / "z.npy").astype(np.int8)), AutoencError, ["int8", "scales"]),
    ("decode-int64", lambda ae, d: ae.decode(Z.astype(np.int64)), AutoencError, ["int64", "float"]),
    ("decode-bool", lambda ae, d: ae.decode(Z.astype(bool)), AutoencError, ["bool"]),
    ("decode-nan", lambda ae, d: ae.decode(np.where(np.arange(Z.size).reshape(Z.shape) == 5, np.nan, Z)), AutoencError, ["NaN or inf"]),
    ("decode-inf", lambda ae, d: ae.decode(Z - np.float32(np.inf)), AutoencError, ["NaN or inf"]),
    ("decode-past-float32", lambda ae, d: ae.decode(Z.astype(np.float64) + 1e300), AutoencError, ["float32's range"]),
    ("decode-channels", lambda ae, d: ae.decode(np.zeros((64, 2, 2), np.float32)), AutoencError, ["(64, 2, 2)", "(128, H, W)"]),
    ("decode-2d", lambda ae, d: ae.decode(np.zeros((128, 4), np.float32)), AutoencError, ["(128, 4)"]),
    ("decode-4d", lambda ae, d: ae.decode(Z[None]), AutoencError, ["(1, 128, 2, 2)"]),
    ("decode-empty", lambda ae, d: ae.decode(np.zeros((128, 0, 0), np.float32)), AutoencError, ["(128, 0, 0)"]),
    ("decode-no-width", lambda ae, d: ae.decode(np.zeros((128, 4, 0), np.float32)), AutoencError, ["(128, 4, 0)"]),
    ("decode-huge", lambda ae, d: ae.decode(np.broadcast_to(np.zeros((1, 1, 1), np.float32), (128, 501, 501))),
     AutoencError, ["8016x8016", "pixel limit"]),
    # decode(size=...)
    ("size-zero", lambda ae, d: ae.decode(Z, size=(0, 0)), AutoencError, ["size (0, 0)", "32x32"]),
    ("size-negative", lambda ae, d: ae.decode(Z, size=(-4, 10)), AutoencError, ["size (-4, 10)"]),
    ("size-negative-height", lambda ae, d: ae.decode(Z, size=(10, -4)), AutoencError, ["size (10, -4)"]),
    ("size-too-wide", lambda ae, d: ae.decode(Z, size=(33, 10)), AutoencError, ["size (33, 10)", "from 1 to 32"]),
    ("size-too-tall", lambda ae, d: ae.decode(Z, size=(10, 1000)), AutoencError, ["size (10, 1000)"]),
    ("size-str", lambda ae, d: ae.decode(Z, size="32x32"), TypeError, ["size", "'32x32'"]),
    ("size-floats", lambda ae, d: ae.decode(Z, size=(32.0, 32.0)), TypeError, ["(width, height)"]),
    ("size-bools", lambda ae, d: ae.decode(Z, size=(True, True)), TypeError, ["(width, height)"]),
    ("size-three", lambda ae, d: ae.decode(Z, size=(1, 2, 3)), TypeError, ["(1, 2, 3)"]),
    ("size-int", lambda ae, d: ae.decode(Z, size=32), TypeError, ["32"]),
    ("size-tensor-too-big", lambda ae, d: ae.decode(torch.zeros(1, 128, 2, 2), size=(64, 64)), AutoencError, ["size (64, 64)"]),
    # decode(): tensors
    ("decode-nan-tensor", lambda ae, d: ae.decode(tensor(1, 128, 2, 2, fill=math.nan)), AutoencError, ["NaN or inf"]),
    ("decode-inf-tensor", lambda ae, d: ae.decode(tensor(1, 128, 2, 2, fill=-math.inf)), AutoencError, ["NaN or inf"]),
    ("decode-int-tensor", lambda ae, d: ae.decode(tensor(1, 128, 2, 2, dtype=torch.int8)), AutoencError, ["torch.int8", "float"]),
    ("decode-3d-tensor", lambda ae, d: ae.decode(tensor(128, 2, 2)), AutoencError, ["(128, 2, 2)", "N x 128 x h x w"]),
    ("decode-channels-tensor", lambda ae, d: ae.decode(tensor(1, 64, 2, 2)), AutoencError, ["(64, 2, 2)", "(128, H, W)"]),
    ("decode-empty-batch", lambda ae, d: ae.decode(tensor(0, 128, 2, 2)), AutoencError, ["(0, 128, 2, 2)"]),
    ("decode-empty-tensor", lambda ae, d: ae.decode(tensor(1, 128, 0, 0)), AutoencError, ["(128, 0, 0)"]),

    # reconstruct()
    ("reconstruct-str", lambda ae, d: ae.reconstruct("photo.png"), TypeError, ["not str"]),
    ("reconstruct-empty", lambda ae, d: ae.reconstruct(np.zeros((0, 7, 3), np.uint8)), AutoencError, ["7x0"]),
    ("reconstruct-nan", lambda ae, d: ae.reconstruct(tensor(2, 3, 16, 16, fill=math.nan)), AutoencError, ["NaN"]),
    ("reconstruct-float-array", lambda ae, d: ae.reconstruct(u8(16, 16) / 255), AutoencError, ["float64"]),

    # encode_file(): outputs that are inputs, then every other argument
    ("encode-file-over-image", lambda ae, d: ae.encode_file(d / "photo.png", d / "photo.png"), AutoencError,
     ["photo.png", "is also an input; refusing to overwrite it (give latent= another name)"]),
    ("encode-file-over-hard-link", lambda ae, d: ae.encode_file(d / "photo.png", d / "hard.png"), AutoencError,
     ["hard.png", "is also an input"]),
    ("encode-file-over-symlink", lambda ae, d: ae.encode_file(d / "photo.png", d / "sym.npy"), AutoencError,
     ["sym.npy", "is also an input"]),
    ("encode-file-sidecar-over-image", lambda ae, d: ae.encode_file(d / "a.npy.json", d / "a.npy"), AutoencError,
     ["a.npy.json", "is also an input"]),
    ("encode-file-relative-spelling", lambda ae, d: ae.encode_file(d / "photo.png", d / "folder" / ".." / "photo.png"),
     AutoencError, ["is also an input"]),
    ("encode-file-image-int", lambda ae, d: ae.encode_file(1, d / "out.npy"), TypeError, ["image", "int"]),
    ("encode-file-image-bytes", lambda ae, d: ae.encode_file(bytes(d / "photo.png"), d / "out.npy"), TypeError, ["image", "bytes"]),
    ("encode-file-latent-none", lambda ae, d: ae.encode_file(d / "photo.png", None), TypeError, ["latent", "NoneType"]),
    ("encode-file-image-array", lambda ae, d: ae.encode_file(u8(16, 16), d / "out.npy"), TypeError, ["image", "ndarray"]),
    ("encode-file-missing", lambda ae, d: ae.encode_file(d / "none.png", d / "out.npy"), AutoencError, ["none.png", "no such"]),
    ("encode-file-folder", lambda ae, d: ae.encode_file(d / "folder", d / "out.npy"), AutoencError, ["folder", "directory"]),
    ("encode-file-not-image", lambda ae, d: ae.encode_file(d / "sym.npy", d / "out.npy"), AutoencError,
     ["sym.npy", "is a latent, not a picture to encode: decode_file turns it back", "encode_file its original picture with refine="]),
    ("encode-file-latent", lambda ae, d: ae.encode_file(d / "z.npy", d / "z2.npy", refine=10), AutoencError, ["z.npy", "is a latent"]),
    ("encode-file-latent-named-png", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.png"), AutoencError,
     ["out.png", "a latent is a .npy file", "give latent= a name ending in .npy, such as out.npy"]),
    ("encode-file-latent-no-suffix", lambda ae, d: ae.encode_file(d / "photo.png", d / "out"), AutoencError,
     ["out: a latent is a .npy file", "such as out.npy"]),
    ("encode-file-refine-negative", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.npy", refine=-1), AutoencError,
     ["refine=-1: give 0"]),
    ("encode-refine-negative", lambda ae, d: ae.encode(u8(16, 16), refine=-1), AutoencError, ["refine=-1: give 0"]),
    ("reconstruct-refine-huge", lambda ae, d: ae.reconstruct(u8(16, 16), refine=10**6), AutoencError, ["refine=1000000"]),
    ("encode-file-truncated", lambda ae, d: ae.encode_file(d / "truncated.png", d / "out.npy"), AutoencError, ["truncated.png"]),
    ("encode-file-nul", lambda ae, d: ae.encode_file(d / "photo.png", str(d / "o\x00ut.npy")), AutoencError, ["NUL"]),
    ("encode-file-into-file", lambda ae, d: ae.encode_file(d / "photo.png", d / "photo.png" / "out.npy"), AutoencError,
     ["photo.png is a file"]),
    ("encode-file-over-folder", lambda ae, d: ae.encode_file(d / "photo.png", d / "folder"), AutoencError, ["folder", "directory"]),
    ("encode-file-dtype", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.npy", dtype="int4"), AutoencError, ["'int4'", "int8"]),
    ("encode-file-dtype-type", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.npy", dtype=np.float32), AutoencError, ["dtype"]),
    ("encode-file-resize-zero", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.npy", resize=0), AutoencError, ["resize", "got 0"]),
    ("encode-file-resize-huge", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.npy", resize=10**6), AutoencError, ["resize"]),
    ("encode-file-resize-float", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.npy", resize=64.5), TypeError, ["resize", "float"]),
    ("encode-file-resize-str", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.npy", resize="64"), TypeError, ["resize", "str"]),
    ("encode-file-resize-bool", lambda ae, d: ae.encode_file(d / "photo.png", d / "out.npy", resize=True), TypeError, ["resize", "bool"]),

    # decode_file()
    ("decode-file-over-latent", lambda ae, d: ae.decode_file(d / "z.npy", d / "z.npy"), AutoencError, ["z.npy", "is also an input"]),
    ("decode-file-over-sidecar", lambda ae, d: ae.decode_file(d / "z.npy", d / "z.npy.json"), AutoencError,
     ["z.npy.json", "is also an input"]),
    ("decode-file-over-latent-link", lambda ae, d: ae.decode_file(d / "sym.npy", d / "photo.png"), AutoencError,
     ["photo.png", "is also an input"]),
    ("decode-file-sidecar-given", lambda ae, d: ae.decode_file(d / "z.npy.json", d / "out.png"), AutoencError, ["sidecar"]),
    ("decode-file-photo-given", lambda ae, d: ae.decode_file(d / "photo.png", d / "out.png"), AutoencError, ["photo.png", "not a .npy"]),
    ("decode-file-missing", lambda ae, d: ae.decode_file(d / "none.npy", d / "out.png"), AutoencError, ["none.npy", "no such"]),
    ("decode-file-nan", lambda ae, d: ae.decode_file(d / "nan.npy", d / "out.png"), AutoencError, ["nan.npy", "NaN"]),
    ("decode-file-int8-bare", lambda ae, d: ae.decode_file(d / "bare-int8.npy", d / "out.png"), AutoencError, ["bare-int8.npy", "sidecar"]),
    ("decode-file-latent-array", lambda ae, d: ae.decode_file(Z, d / "out.png"), TypeError, ["latent", "ndarray"]),
    ("decode-file-image-int", lambda ae, d: ae.decode_file(d / "z.npy", 7), TypeError, ["image", "int"]),
    ("decode-file-over-folder", lambda ae, d: ae.decode_file(d / "z.npy", d / "folder"), AutoencError, ["folder", "directory"]),
    ("decode-file-over-latent-named", lambda ae, d: ae.decode_file(d / "z.npy", d / "z.npy"), AutoencError,
     ["give image= another name"]),
    ("decode-file-unknown-suffix", lambda ae, d: ae.decode_file(d / "z.npy", d / "out.bmp"), AutoencError,
     ["out.bmp: .bmp is not a picture format decode writes", "give image= a name ending in .png, .jpg, .webp or .tif"]),
    ("decode-file-no-suffix", lambda ae, d: ae.decode_file(d / "z.npy", d / "out"), AutoencError, ["out: no suffix"]),

    # train(): settings of the wrong type or range are refused before anything is read or written
    ("train-steps-str", lambda ae, d: autoenc_cli.train(d / "none", d / "run", max_steps="2"), TypeError, ["max_steps='2'", "int"]),
    ("train-steps-float", lambda ae, d: autoenc_cli.train(d / "none", d / "run", max_steps=2.5), TypeError, ["max_steps=2.5"]),
    ("train-lr-str", lambda ae, d: autoenc_cli.train(d / "none", d / "run", lr="fast"), TypeError, ["lr='fast'", "float"]),
    ("train-rotate-int", lambda ae, d: autoenc_cli.train(d / "none", d / "run", rotate=1), TypeError, ["rotate=1", "bool"]),
    ("train-batch-bool", lambda ae, d: autoenc_cli.train(d / "none", d / "run", batch_size=True), TypeError, ["batch_size=True"]),
    ("train-init-int", lambda ae, d: autoenc_cli.train(d / "none", d / "run", init=5), TypeError, ["init=5", "str"]),
    ("train-steps-array", lambda ae, d: autoenc_cli.train(d / "none", d / "run", max_steps=np.zeros((3, 3))), TypeError, ["max_steps="]),
    ("train-steps-zero", lambda ae, d: autoenc_cli.train(d / "none", d / "run", max_steps=0), AutoencError,
     ["max_steps must be at least 1 (got 0)"]),
    ("train-lr-nan", lambda ae, d: autoenc_cli.train(d / "none", d / "run", lr=math.nan), AutoencError, ["lr must be", "nan"]),
    ("train-color", lambda ae, d: autoenc_cli.train(d / "none", d / "run", color="cmyk"), AutoencError, ["color 'cmyk'"]),
    ("train-unknown", lambda ae, d: autoenc_cli.train(d / "none", d / "run", max_step=3), TypeError, ["unknown settings", "max_step"]),
    ("train-data-int", lambda ae, d: autoenc_cli.train(3, d / "run"), TypeError, ["data", "int"]),
    ("train-out-none", lambda ae, d: autoenc_cli.train(d / "none", None), TypeError, ["out", "NoneType"]),
    ("train-progress", lambda ae, d: autoenc_cli.train(d / "none", d / "run", progress=5), TypeError, ["progress", "int"]),
]


@pytest.mark.parametrize("name, call, kind, words", MATRIX, ids=[getattr(c, "values", c)[0] for c in MATRIX])
def test_hostile_input_is_refused_in_one_line_and_changes_no_file(ae, files, name, call, kind, words):
    message = refused(lambda: call(ae, files), kind, *words, folder=files)
    flags = re.findall(r"(?<![\w.-])--?[a-z][\w-]*", message)  # in Python, arguments are named as such, never as options
    assert not flags, (flags, message)


# ---------------------------------------------------------------- what is taken, and taken right

def test_arrays_of_any_strides_give_the_contiguous_arrays_latent(ae):
    """OpenCV's BGR flipped with [..., ::-1], a picture flipped upside down, Fortran order: on sides that are multiples
    of 16 (no padding copies them first) as elsewhere."""
    for h, w in ((16, 32), (20, 24)):
        bgr = u8(h, w)
        rgb = bgr[..., ::-1]
        expected = ae.encode(np.ascontiguousarray(rgb))
        np.testing.assert_array_equal(ae.encode(rgb), expected)
        np.testing.assert_array_equal(ae.encode(np.asfortranarray(rgb)), expected)
        np.testing.assert_array_equal(ae.reconstruct(rgb[::-1]), ae.reconstruct(np.ascontiguousarray(rgb[::-1])))
    z = ae.encode(u8(32, 32))
    np.testing.assert_array_equal(np.asarray(ae.decode(z[:, ::-1])), np.asarray(ae.decode(np.ascontiguousarray(z[:, ::-1]))))


def test_a_uint8_tensor_is_taken_as_bytes(ae):
    """What torchvision's read_image gives: the latent of the same picture as floats in [0, 1], not one scaled by 255
    twice; reconstruct gives bytes back, within a level of the array path's."""
    pixels = u8(32, 48)
    as_bytes = torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()
    z = ae.encode(as_bytes)
    np.testing.assert_allclose(z.numpy(), ae.encode(as_bytes.float() / 255).numpy(), atol=2e-3)
    np.testing.assert_allclose(z[0].numpy(), ae.encode(pixels), atol=2e-3)
    back = ae.reconstruct(as_bytes)
    assert back.dtype == torch.uint8 and back.shape == as_bytes.shape
    assert np.abs(back[0].permute(1, 2, 0).numpy().astype(int) - ae.reconstruct(pixels).astype(int)).max() <= 1


def test_decode_crops_arrays_and_tensors_alike(ae):
    z = ae.encode(u8(32, 48))
    assert ae.decode(z, size=(40, 30)).size == (40, 30)
    assert ae.decode(torch.from_numpy(z)[None], size=(40, 30)).shape == (1, 3, 30, 40)
    assert ae.decode(z, size=(np.int64(48), np.int64(32))).size == (48, 32)  # numpy's whole numbers are whole numbers


def test_load_takes_devices_by_name_and_as_torch_devices(ae):
    for device in ("cpu", "auto", torch.device("cpu")):
        assert autoenc_cli.load(device=device, max_memory=64).device.type in ("cpu", "cuda", "mps")


def test_the_api_refuses_an_output_that_is_an_input_as_the_command_line_does(ae, tmp_path):
    photo = write_image(tmp_path / "photo.png", u8(16, 16), format="PNG")
    shell = run_cli("encode", photo, "-o", photo, check=False)
    python = refused(lambda: ae.encode_file(photo, photo), AutoencError, folder=tmp_path)
    assert shell.returncode == 1 and shell.stderr.strip() == f"error: {python}".replace("latent=", "-o")  # each its own name


def test_a_failed_sidecar_write_leaves_the_old_pair_whole(ae, files, tmp_path, monkeypatch):
    """A full disk while the sidecar is written: neither the new .npy nor a temporary is left, and the latent pair
    already there is the one it was (both are written before either is renamed)."""
    folder = tmp_path / "pair"
    folder.mkdir()
    ae.encode_file(files / "photo.png", folder / "z.npy", dtype="int8")
    real_write = pathlib.Path.write_bytes

    def disk_full_at_sidecar(self, data):
        if self.name.startswith(".") and ".npy.json." in self.name:  # the temporary of a sidecar
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", disk_full_at_sidecar)
    refused(lambda: ae.encode_file(files / "photo.png", folder / "z.npy"), AutoencError, "z.npy.json", "No space left",
            folder=folder)
    refused(lambda: ae.encode_file(files / "photo.png", folder / "new.npy"), AutoencError, "No space left", folder=folder)
