"""autoenc score: pictures ranked by reconstruction error, heatmaps of the worst, a threshold from normal pictures."""

import csv
import io
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import photo_like, write_image
from PIL import Image
from typer.testing import CliRunner

from autoenc_cli.cli.app import app
from autoenc_cli.errors import AutoencError
from autoenc_cli.measures.score import REGION, csv_field, peak_error, score, threshold_at
from autoenc_cli.model.weights import load_model, resolve_weights

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


def smooth_pictures(folder, count, seed, size=(80, 96)):
    """Smooth pictures (which the bundled model reconstructs well) of a size that is not a multiple of 16."""
    rng = np.random.default_rng(seed)
    return [write_image(folder / f"p{seed}_{i}.png", photo_like(rng, 96)[:size[0], :size[1]]) for i in range(count)]


def with_noise_patch(path, out, seed=0):
    """The picture with a 24x24 patch of white noise: no autoencoder reconstructs that, a clear defect."""
    pixels = np.array(Image.open(path))
    pixels[30:54, 40:64] = np.random.default_rng(seed).integers(0, 256, (24, 24, 3))
    return write_image(out, pixels)


@pytest.fixture(scope="module")
def model():
    return load_model(resolve_weights(None))[0]


def test_peak_is_the_worst_window_and_the_whole_mean_for_small_maps():
    error = torch.zeros(128, 128)
    error[32:64, 64:96] = 100.0  # one window of REGION x REGION on the half-region grid
    assert REGION == 32 and peak_error(error) == pytest.approx(100.0)
    assert error.mean().item() == pytest.approx(100.0 * 32 * 32 / 128**2)
    small = torch.full((20, 30), 7.0)
    assert peak_error(small) == pytest.approx(7.0)


def test_a_pasted_defect_ranks_first_and_is_over_the_reference_threshold(tmp_path, model):
    # the clean test pictures are among the normal ones and the threshold is the normal maximum, so none of them
    # can be over it whatever the weights (with fresh smooth pictures one could be, by chance, past 6 normal ones)
    clean = smooth_pictures(tmp_path / "test", 3, seed=2)
    normal = smooth_pictures(tmp_path / "normal", 3, seed=1) + [shutil.copy(f, tmp_path / "normal") for f in clean]
    defective = with_noise_patch(clean[0], tmp_path / "test" / "defect.png")
    result = score(model, clean + [defective], by="peak", reference=normal, percentile=100)
    assert result.scores[0].file == str(defective) and result.scores[0].over
    assert [s.over for s in result.scores[1:]] == [False, False, False]
    assert result.over_count == 1 and result.reference_count == 6
    # the whole-picture measures see it too: the defect costs PSNR and SSIM against its own clean picture
    by_file = {s.file: s for s in result.scores}
    assert by_file[str(defective)].psnr < by_file[str(clean[0])].psnr - 3
    assert by_file[str(defective)].ssim < by_file[str(clean[0])].ssim
    assert (by_file[str(defective)].width, by_file[str(defective)].height) == (96, 80)


def test_threshold_is_the_percentile_and_ranking_follows_the_measure(tmp_path, model):
    assert threshold_at([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert threshold_at([1.0, 2.0, 3.0, 4.0, 5.0], 100) == 5.0
    with pytest.raises(AutoencError, match="--percentile"):
        threshold_at([1.0], 101)
    files = smooth_pictures(tmp_path, 4, seed=3)
    by_ssim = score(model, files, by="ssim")
    assert [s.ssim for s in by_ssim.scores] == sorted(s.ssim for s in by_ssim.scores)  # worst (lowest SSIM) first
    assert all(s.over is None for s in by_ssim.scores) and by_ssim.threshold is None
    with pytest.raises(AutoencError, match="--by"):
        score(model, files, by="psnr2")


def test_cli_writes_sorted_csv_heatmaps_and_exit_code(tmp_path):
    normal = tmp_path / "normal"
    smooth_pictures(normal, 3, seed=4)
    data = tmp_path / "data"
    clean = smooth_pictures(data, 2, seed=5)
    for f in clean:  # normal includes the clean pictures: at --percentile 100 neither can be over, whatever the weights
        shutil.copy(f, normal)
    with_noise_patch(clean[1], data / "defect.png")
    (data / "broken.png").write_bytes(b"not a picture")
    heat = tmp_path / "heat"
    result = invoke("score", data, "--reference", normal, "--percentile", 100, "--heatmaps", heat, "--worst", 2, "--exit-code")
    assert result.exit_code == 1, result.output  # a picture not scored is an error, before any over the threshold
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and rows[0]["file"].endswith("defect.png")
    assert [r["over"] for r in rows] == ["yes", "no", "no"]
    assert [float(r["peak"]) for r in rows] == sorted((float(r["peak"]) for r in rows), reverse=True)
    assert "1 of 3 over the threshold" in result.stderr and "skipped 1 of 9 pictures, unreadable" in result.stderr
    assert "broken.png: not an image" in result.stderr
    drawn = sorted(p.name for p in heat.iterdir())
    assert len(drawn) == 2 and drawn[0] == "001_defect.png" and drawn[1].startswith("002_")
    assert Image.open(heat / "001_defect.png").size[0] >= 3 * 96  # original | reconstruction | error
    (data / "broken.png").unlink()
    assert invoke("score", data, "--reference", normal, "--percentile", 100, "--exit-code").exit_code == 3
    again = invoke("score", data, "--heatmaps", heat, "--worst", 1, "--json")
    assert again.exit_code == 0 and sorted(p.name for p in heat.iterdir()) == ["001_defect.png"]  # the earlier set replaced
    report = json.loads(again.stdout)
    assert report["pictures"] == 3 and report["threshold"] is None and report["scores"][0]["file"].endswith("defect.png")


def test_cli_refuses_what_it_must_not_touch(tmp_path):
    data = tmp_path / "data"
    smooth_pictures(data, 2, seed=6)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.png").write_bytes(b"x")
    refused = invoke("score", data, "--heatmaps", mine)
    assert refused.exit_code == 1 and "not heatmaps" in refused.output and (mine / "holiday.png").exists()
    inside = invoke("score", data, "--heatmaps", data / "heat")
    assert inside.exit_code == 1 and "is inside" in inside.output
    no_ref = invoke("score", data, "--exit-code")
    assert no_ref.exit_code == 1 and "--exit-code needs --reference" in no_ref.output
    missing = invoke("score", tmp_path / "nothing")
    assert missing.exit_code == 1 and "no such file or folder" in missing.output


def test_csv_fields_with_commas_are_quoted():
    assert csv_field("a,b.png") == '"a,b.png"' and csv_field('say "hi".png') == '"say ""hi"".png"' and csv_field("x.png") == "x.png"


def test_ssim_and_error_in_blocks_equal_the_whole_picture_at_once():
    from autoenc_cli.codec.metrics import squared_error, ssim_per_image, ssim_picture
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (70, 53, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    whole = ssim_per_image(a[None], b[None]).item()
    assert ssim_picture(a, b, block=9) == pytest.approx(whole, abs=1e-12) and ssim_picture(a, b) == pytest.approx(whole, abs=1e-12)
    diff = a.astype(np.float64) - b
    assert np.allclose(squared_error(a, b, band_rows=8).numpy(), (diff * diff).mean(-1), rtol=1e-6)
