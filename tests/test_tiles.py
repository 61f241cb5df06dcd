"""Pictures in exact overlapped tiles: the margins come from the layer table, and tiles give the one-pass result."""

import numpy as np
import pytest
import torch
from conftest import photo_like

from autoenc_cli.codec import tiles
from autoenc_cli.codec.encoding import decode_latents, encode_images, encode_picture, pad_to_multiple, reconstruct_picture
from autoenc_cli.errors import AutoencError
from autoenc_cli.model.autoencoder import Autoencoder, init_weights
from autoenc_cli.model.weights import default_weights_path, load_model


@pytest.fixture(scope="module")
def model():
    return load_model(default_weights_path())[0]


def test_margins_come_from_the_receptive_field_of_the_layer_table(model):
    first, last = tiles.receptive_interval(model.encoder, 10, 10)
    assert last - first + 1 == 91  # eight 3x3 convolutions, four of them stride 2: 1 + 2 * (1+1+2+2+4+4+8+8)
    assert tiles.margin(model.encoder, encoder=True) == 3 and tiles.margin(model.decoder, encoder=False) == 2


def picture(h, w, seed=0):
    big = torch.from_numpy(photo_like(np.random.default_rng(seed), 64)).permute(2, 0, 1)[None].float()
    return torch.nn.functional.interpolate(big, size=(h, w), mode="bilinear")[0].permute(1, 2, 0).byte().numpy()


@pytest.mark.parametrize("h, w, max_memory", [(330, 120, 16), (40, 600, 16), (7, 5, 16)])
def test_tiles_give_the_one_pass_latents_and_pixels(model, h, w, max_memory):
    pixels = picture(h, w)
    cells = (-(-h // 16), -(-w // 16))
    encoding = tiles.plan(model.encoder, 3, True, cells, max_memory)
    decoding = tiles.plan(model.decoder, model.latent_channels, False, cells, max_memory)
    one_pass = encode_images(model, pad_to_multiple(pixels)[None])[0]
    tiled = encode_picture(model, pixels, max_memory)
    assert tiled.shape == one_pass.shape and np.abs(tiled - one_pass).max() < 1e-3  # float order only
    pixels_one_pass = decode_latents(model, one_pass[None])[0]
    pixels_tiled = tiles.decode_tiled(model, torch.from_numpy(one_pass)[None], max_memory)
    assert np.abs(pixels_tiled.astype(int) - pixels_one_pass.astype(int)).max() <= 1
    assert (pixels_tiled != pixels_one_pass).mean() < 1e-3
    if max(cells) > 20:  # the picture really was cut
        assert len(tiles.spans(max(cells), max(encoding.window), encoding.margin)) > 1
        assert len(tiles.spans(max(cells), max(decoding.window), decoding.margin)) > 1


def test_reconstruct_picture_is_encode_then_decode(model):
    pixels = picture(90, 170, seed=3)
    latent = encode_picture(model, pixels, 16)
    expected = decode_latents(model, latent[None])[0][:90, :170]
    assert np.array_equal(reconstruct_picture(model, pixels, 16), expected)


def test_one_cell_less_of_margin_is_not_exact(model, monkeypatch):
    pixels = picture(600, 80, seed=1)  # 38 x 5 cells: windows of 18 rows at 16 MB, cores at exactly the margin
    one_pass = encode_images(model, pad_to_multiple(pixels)[None])[0]
    pixels_one_pass = decode_latents(model, one_pass[None])[0]
    monkeypatch.setattr(tiles, "margin", lambda layers, encoder: 2 if encoder else 1)
    assert np.abs(encode_picture(model, pixels, 16) - one_pass).max() > 0.1  # the computed margins are needed
    short = tiles.decode_tiled(model, torch.from_numpy(one_pass)[None], 16)
    assert np.abs(short.astype(int) - pixels_one_pass).max() > 2


def test_spans_cover_every_cell_once_with_a_margin_where_there_is_a_neighbour():
    assert tiles.axis_window(217, 73, 2) == 59  # 4 equal cores of 55 cells, not 4 of 69 with the last mostly overlap
    for cells, window, margin in [(57, 11, 3), (12, 11, 3), (11, 11, 3), (100, 7, 2), (217, 59, 2)]:
        covered = []
        for start, core_start, core_end in tiles.spans(cells, window, margin):
            assert 0 <= start and start + min(window, cells) <= cells
            assert core_start - start >= margin or start == 0
            assert start + window - core_end >= margin or start + window >= cells
            covered += range(core_start, core_end)
        assert covered == list(range(cells))


def test_a_budget_too_small_for_one_tile_is_a_one_line_error(model):
    with pytest.raises(AutoencError, match="--max-memory 1 MB is too small for one tile"):
        tiles.plan(model.decoder, model.latent_channels, False, (100, 100), 1)


def test_the_big_network_tiles_too():
    model = Autoencoder(2)
    init_weights(model)
    pixels = picture(150, 260, seed=2)
    one_pass = encode_images(model, pad_to_multiple(pixels)[None])[0]
    assert np.abs(encode_picture(model, pixels, 16) - one_pass).max() < 1e-3


def test_tiles_honour_the_lab_colour_encoding(model):
    """A LAB model (the bundled network told its pixels are LAB: any colour-sensitive weights do) in tiles at a tiny
    budget against one pass: the same pixels, as for RGB; and far from the same network read as RGB."""
    lab = Autoencoder(color="lab")
    lab.load_state_dict(model.state_dict())
    lab.eval()
    pixels = picture(200, 130, seed=4)
    one_pass = encode_images(lab, pad_to_multiple(pixels)[None])[0]
    tiled = encode_picture(lab, pixels, 16)
    assert np.abs(tiled - one_pass).max() < 1e-4 * np.abs(one_pass).max()  # float order only (LAB latents are larger)
    assert np.abs(encode_picture(model, pixels, 16) - one_pass).max() > 1  # the encodings differ: the check bites
    decoded_one_pass = decode_latents(lab, one_pass[None])[0]
    decoded_tiled = tiles.decode_tiled(lab, torch.from_numpy(one_pass)[None], 16)
    assert len(tiles.spans(13, tiles.plan(lab.decoder, lab.latent_channels, False, (13, 9), 16).window[0], 2)) > 1
    assert np.abs(decoded_tiled.astype(int) - decoded_one_pass).max() <= 1 and (decoded_tiled != decoded_one_pass).mean() < 1e-3
    as_rgb = tiles.decode_tiled(model, torch.from_numpy(one_pass)[None], 16)
    assert np.abs(as_rgb.astype(int) - decoded_one_pass).max() > 20
