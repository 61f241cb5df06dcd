"""--fraction: the same share of every class, chosen deterministically from the seed, recorded in the weights."""

import pytest
from pathlib import Path

import numpy as np
from conftest import make_tiny_imagenet, photo_like, run_cli, write_image

from autoenc_cli.data.splits import class_fraction, split_dataset
from autoenc_cli.model.weights import load_model, provenance


def per_class(files, layout):
    counts = {}
    for p in files:
        key = p.parent.parent.name if layout == "tiny-imagenet" else p.parent.name
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_each_class_keeps_its_share_and_the_seed_decides_which(tmp_path):
    root = make_tiny_imagenet(tmp_path / "t", classes=3, per_class=10, val=1, corrupt=False)
    split = split_dataset(root)
    subset = class_fraction(split.train, 0.2, seed=0, layout=split.layout)
    assert per_class(subset, split.layout) == {"n00001000": 2, "n00001001": 2, "n00001002": 2}
    assert class_fraction(split.train[::-1], 0.2, 0, split.layout) == subset[::-1]  # listing order does not matter
    others = [class_fraction(split.train, 0.2, seed, split.layout) for seed in range(1, 6)]
    assert any(o != subset for o in others)
    assert class_fraction(split.train, 1.0, 0, split.layout) == split.train
    assert per_class(class_fraction(split.train, 0.01, 0, split.layout), split.layout) == {k: 1 for k in per_class(subset, split.layout)}


def test_a_plain_folder_uses_parent_folders_as_classes(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("cats", 8), ("dogs", 4), ("dogs/puppies", 4)):
        for i in range(n):
            write_image(tmp_path / cls / f"{i}.png", photo_like(rng, 16), format="PNG")
    files = sorted(Path(tmp_path).rglob("*.png"))
    subset = class_fraction(files, 0.5, 7, "folder")
    assert per_class(subset, "folder") == {"cats": 4, "dogs": 2, "puppies": 2}


@pytest.mark.slow
def test_train_fraction_is_recorded_in_the_weights(tmp_path):
    root = make_tiny_imagenet(tmp_path / "t", classes=2, per_class=10, val=2, corrupt=False)
    run_cli("train", root, "--out", tmp_path / "run", "--fraction", 0.5, "--max-steps", 2, "--batch-size", 4, "--seed", 3)
    _, meta = load_model(tmp_path / "run" / "model.safetensors")
    info = provenance(meta)
    assert info["fraction"] == 0.5 and info["train_images"] == 10 and info["seed"] == 3
    proc = run_cli("train", root, "--out", tmp_path / "bad", "--fraction", 0, check=False)
    assert proc.returncode == 1 and "--fraction must be in (0, 1]" in proc.stderr and "Traceback" not in proc.stderr
