"""Training on photographs of any size (random windows at random zooms), --init, whole-picture eval, usable early weights."""

import numpy as np
import pytest
import torch
from conftest import photo_like, write_image
from test_train import quiet

from autoenc_cli.training.checkpoint import read_log
from autoenc_cli.codec.encoding import reconstruct_picture
from autoenc_cli.errors import AutoencError
from autoenc_cli.measures.evaluate import bicubic_same_numbers, evaluate_whole
from autoenc_cli.model.autoencoder import relu_slope
from autoenc_cli.data.pyramids import cached_photos, pyramid_levels
from autoenc_cli.data.windows import draw_windows, fixed_windows, window_batch
from autoenc_cli.training.train import TrainConfig, TrainingInterrupted, train, validate
from autoenc_cli.model.weights import fingerprint, load_model, provenance, save_weights


def make_photos(folder, count=6, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = rng.integers(70, 300, 2)
        big = np.array(torch.nn.functional.interpolate(torch.from_numpy(photo_like(rng, 64)).permute(2, 0, 1)[None].float(),
                                                       size=(int(h), int(w)), mode="bilinear")[0].permute(1, 2, 0).byte().numpy())
        write_image(folder / f"photo_{i}.png", big)
    return folder


def test_pyramid_halves_down_to_one_window():
    from PIL import Image
    levels = pyramid_levels(Image.new("RGB", (520, 300)))
    assert [a.shape[:2] for a in levels] == [(300, 520), (150, 260), (75, 130)]


def test_windows_are_crops_at_zoom_one_and_draws_repeat(tmp_path):
    photos = cached_photos(sorted(make_photos(tmp_path / "p").glob("*.png")), tmp_path / "cache")
    assert len(photos) == 6 and photos.skipped == 0
    draws = draw_windows(seed=1, epoch=0, pictures=len(photos), count=24)
    assert sorted(draws.picture[:6].tolist()) == list(range(6))  # every photo equally often
    again = draw_windows(seed=1, epoch=0, pictures=len(photos), count=24)
    assert torch.equal(window_batch(photos, draws, 0, 24), window_batch(photos, again, 0, 24))
    draws.uniform[:, 0] = 0.0  # zoom 1: the photo's own pixels, no resampling
    draws.flips[:] = False
    batch = window_batch(photos, draws, 0, 24)
    assert batch.shape == (24, 64, 64, 3) and batch.dtype == torch.uint8
    for i in range(24):
        picture = photos.level(int(draws.picture[i]), 0)
        h, w = picture.shape[:2]
        top, left = int(draws.uniform[i, 2] * (h - 63)), int(draws.uniform[i, 1] * (w - 63))
        assert np.array_equal(batch[i].numpy(), picture[top:top + 64, left:left + 64])
    whole = fixed_windows(photos, per_picture=2, max_zoom=None)  # validation windows: fixed
    assert np.array_equal(whole, fixed_windows(photos, per_picture=2, max_zoom=None)) and whole.shape == (12, 64, 64, 3)


def test_photo_folder_trains_on_windows_and_resumes_on_the_same_trajectory(tmp_path):
    data = make_photos(tmp_path / "photos", count=8)
    common = dict(data=str(data), epochs=100, batch_size=4, warmup_steps=5, log_every=5, save_every=10, precision="fp32",
                  seed=3, windows_per_photo=4, relu_leak=0.0)
    full = train(TrainConfig(out=str(tmp_path / "full"), max_steps=30, **common), say=quiet)
    assert provenance(load_model(full.weights)[1])["windows_per_photo"] == 4
    with pytest.raises(TrainingInterrupted):  # stopped through the loop's own seam, as Ctrl-C stops it
        train(TrainConfig(out=str(tmp_path / "part"), max_steps=30, **common), say=quiet, should_stop=lambda step: step == 13)
    train(TrainConfig(out=str(tmp_path / "part"), max_steps=30, **common), resume=True, say=quiet)
    a, b = read_log(tmp_path / "full" / "log.csv"), read_log(tmp_path / "part" / "log.csv")
    np.testing.assert_allclose([float(r["train_loss"]) for r in a if r["train_loss"]],
                               [float(r["train_loss"]) for r in b if r["train_loss"]], rtol=1e-5)


@pytest.mark.slow
def test_init_starts_from_weights_and_records_the_parent(tmp_path):
    data = make_photos(tmp_path / "photos", count=6)
    common = dict(data=str(data), epochs=100, batch_size=4, warmup_steps=5, log_every=5, precision="fp32", windows_per_photo=4)
    first = train(TrainConfig(out=str(tmp_path / "a"), max_steps=60, **common), say=quiet)
    tuned = train(TrainConfig(out=str(tmp_path / "b"), max_steps=5, init=str(first.weights), **common), say=quiet)
    meta = load_model(tuned.weights)[1]
    assert provenance(meta)["parent"] == fingerprint(first.weights)
    assert provenance(meta)["lr"] == pytest.approx(1e-3 * (4 / 32) ** 0.5)  # the fine-tuning recipe, scaled to batch 4
    assert provenance(meta)["relu_leak"] == 0.0
    fresh = train(TrainConfig(out=str(tmp_path / "c"), max_steps=5, **common), say=quiet)
    assert float(tuned.history[0]["train_loss"]) < 0.2 * float(fresh.history[0]["train_loss"])  # started trained
    bundled = train(TrainConfig(out=str(tmp_path / "e"), max_steps=5, init="default", **common), say=quiet)
    assert bundled.val_psnr > fresh.val_psnr + 5
    with pytest.raises(AutoencError, match="channel multiplier 1, this run --channel-multiplier 2"):
        train(TrainConfig(out=str(tmp_path / "d"), max_steps=5, init=str(first.weights), channel_multiplier=2, **common), say=quiet)


def test_weights_saved_during_the_leak_reconstruct_as_validated(tmp_path):
    data = make_photos(tmp_path / "photos", count=6)
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=3, batch_size=4, warmup_steps=2,
                               precision="fp32", windows_per_photo=8, relu_leak=0.4, leak_until=1.0), say=quiet)
    model, _ = load_model(result.weights)  # saved at the end of epoch 3 of 3, the leak not over: leaky ReLUs
    assert 0 < relu_slope(model) < 0.4
    val = fixed_windows(cached_photos(sorted(data.glob("photo_5.png"))), 8)
    _, psnr, _ = validate(model, val, torch.device("cpu"), "fp32")
    assert psnr == pytest.approx(result.val_psnr, abs=1e-3)  # the file is the network the last val line scored
    save_weights(model, tmp_path / "copy.safetensors")
    assert relu_slope(load_model(tmp_path / "copy.safetensors")[0]) == relu_slope(model)


def test_whole_picture_eval_matches_encode_decode_and_keeps_a_sixth(tmp_path):
    data = make_photos(tmp_path / "photos", count=3)
    model, _ = load_model(train(TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=3, batch_size=4,
                                            precision="fp32", windows_per_photo=4), say=quiet).weights)
    result = evaluate_whole(data, model)
    assert len(result.files) == 3 and result.skipped == 0
    pixels = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(result.files[0]).convert("RGB"))
    recon = reconstruct_picture(model, pixels)
    mse = ((recon.astype(float) - pixels) ** 2).mean()
    assert result.model.psnr[0] == pytest.approx(10 * np.log10(255 ** 2 / mse))
    smooth = np.tile(np.linspace(0, 255, 120, dtype=np.uint8)[None, :, None], (90, 1, 3))
    assert np.abs(bicubic_same_numbers(smooth).astype(int) - smooth).max() <= 2  # a gradient survives resizing
    summary = result.to_json()
    assert summary["pictures"] == 3 and len(summary["per_picture"]) == 3
    assert summary["vs_bicubic_db"]["mean"] == pytest.approx(summary["psnr"] - summary["baselines"]["bicubic"]["psnr"])


def test_quarter_turns_and_channel_orders_are_the_plain_windows_turned_and_reordered(tmp_path):
    from autoenc_cli.data.windows import PERMUTATIONS
    photos = cached_photos(sorted(make_photos(tmp_path / "p", count=3).glob("*.png")), tmp_path / "cache")
    draws = draw_windows(seed=2, epoch=1, pictures=len(photos), count=12)
    plain = window_batch(photos, draws, 0, 12)
    both = window_batch(photos, draws, 0, 12, turns=True, channel_orders=True)
    assert len(set(draws.turns.tolist())) > 1 and len(set(draws.channel_order.tolist())) > 1
    for i in range(12):
        expected = torch.rot90(plain[i], int(draws.turns[i]), (0, 1))[:, :, PERMUTATIONS[draws.channel_order[i]]]
        assert torch.equal(both[i], expected)


def test_resampling_weights_resize_as_antialiased_bicubic():
    from autoenc_cli.data.windows import SPAN, resampling_weights
    for side in (64, 65, 90, 127, 128):
        x = torch.rand(1, 3, side, side) * 255
        expected = torch.nn.functional.interpolate(x, size=(64, 64), mode="bicubic", antialias=True, align_corners=False)
        weights = resampling_weights(torch.tensor([side]))[:, None]
        padded = torch.zeros(1, 3, SPAN, SPAN)
        padded[..., :side, :side] = x
        assert (weights @ padded @ weights.transpose(-1, -2) - expected).abs().max() < 1e-3


def test_windows_cut_in_one_batch_on_the_device_match_the_ones_cut_one_by_one(tmp_path):
    photos = cached_photos(sorted(make_photos(tmp_path / "p").glob("*.png")), tmp_path / "cache")
    draws = draw_windows(seed=4, epoch=2, pictures=len(photos), count=40)
    settings = [dict(turns=True, channel_orders=True), dict(max_zoom=1.5)]
    one_by_one = [window_batch(photos, draws, 0, 40, **kw).int() for kw in settings]
    photos.to(torch.device("cpu"))  # as on a GPU: the pixels as a tensor, so the batched path
    for kw, expected in zip(settings, one_by_one):
        difference = (window_batch(photos, draws, 0, 40, **kw).int() - expected).abs()
        assert difference.max() <= 1 and (difference > 0).float().mean() < 1e-3
