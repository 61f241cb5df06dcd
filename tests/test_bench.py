"""Pieces of `autoenc bench` that run in a test's time (the whole benchmark takes minutes)."""

import math

import torch

from autoenc_cli.measures.bench import GFLOP_PER_TRAIN_IMAGE, convolutions_alone, table


def test_convolutions_alone_measures_a_rate():
    rate = convolutions_alone(torch.device("cpu"), "fp32", batch=2, seconds=0.2)
    assert math.isfinite(rate) and rate > 0


def test_table_reports_the_convolution_bound_against_the_ceiling():
    report = {
        "machine": {"cpu": "test cpu", "cores": 2, "cpu_flags": ["avx2"]}, "device": "cpu", "precision": "fp32",
        "fp32_gflops": 101.0, "bf16_gflops": None, "ceiling_images_per_s": 101.0 / GFLOP_PER_TRAIN_IMAGE,
        "naive_images_per_s": 20.0, "convolutions_alone_images_per_s": 50.0, "convolutions_alone_percent_of_ceiling": 50.0,
        "train": {"images_per_s": 40.0, "percent_of_ceiling": 40.0, "loop_images_per_s": 45.0, "peak_rss_mb": 700.0},
        "codec": {"encode": 1000.0, "decode": 100.0}, "data_peak_rss_mb_100k": 200.0,
        "cli": {"encode_one_s": 1.2, "import_torch_s": 1.0, "ratio": 1.2},
    }
    rows = dict(table(report))
    assert rows["ceiling"] == "100 img/s"
    assert rows["autoenc train, whole process (batch 32)"] == "40 img/s = 40% of ceiling = 2.0x naive"
    bound = [v for k, v in rows.items() if k.startswith("the 17 convolutions alone")]
    assert bound == ["50 img/s = 50% of ceiling"]


def test_the_json_report_is_valid_json_when_a_measure_is_missing():
    import json

    from autoenc_cli.measures.bench import to_json
    text = to_json({"train": {"images_per_s": float("nan"), "peak_rss_mb": 700.0}, "codec": [1.0, float("inf")], "cores": 2})
    assert json.loads(text) == {"train": {"images_per_s": None, "peak_rss_mb": 700.0}, "codec": [1.0, None], "cores": 2}
    assert "NaN" not in text and "Infinity" not in text
