import torch

from autoenc_cli.model.autoencoder import Autoencoder, decode_pixels, encode_pixels, init_weights, latent_shape


def test_parameter_count_matches_seed():
    model = Autoencoder(1)
    weights = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))
    biases = sum(p.numel() for n, p in model.named_parameters() if n.endswith("bias"))
    assert (weights, biases) == (600_000, 131)
    big = Autoencoder(2)
    assert big.decoder[-2].out_channels == 3 and big.encoder[0].in_channels == 3
    # hidden-to-hidden weights x4, the 3-channel ends x2 (864 -> 1,728 and 96 -> 192), biases 256 + 3
    assert sum(p.numel() for p in big.parameters()) == (600_000 - 864 - 96) * 4 + 1_728 + 192 + 259 == 2_398_339


def test_every_intermediate_shape_matches_seed_table():
    encoder_shapes = [(32, 32, 32), (32, 32, 32), (32, 16, 16), (32, 16, 16), (64, 8, 8), (64, 8, 8), (128, 4, 4), (128, 4, 4)]
    decoder_shapes = [(32, 8, 8), (128, 8, 8), (128, 8, 8), (32, 16, 16), (32, 16, 16), (128, 16, 16),
                      (32, 32, 32), (32, 32, 32), (128, 32, 32), (32, 64, 64), (32, 64, 64), (32, 64, 64), (3, 64, 64)]
    model = Autoencoder(1)
    x = torch.zeros(2, 3, 64, 64)
    seen = []
    for layer in model.encoder:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d):
            seen.append(tuple(x.shape[1:]))
            assert layer.kernel_size == (3, 3) and layer.padding == (1, 1)
    assert seen == encoder_shapes
    strides = [layer.stride[0] for layer in model.encoder if isinstance(layer, torch.nn.Conv2d)]
    assert strides == [2, 1, 2, 1, 2, 1, 2, 1]
    assert [layer.bias is not None for layer in model.encoder if isinstance(layer, torch.nn.Conv2d)] == [False] * 4 + [True] * 2 + [False] * 2
    assert sum(isinstance(layer, torch.nn.ReLU) for layer in model.encoder) == 8
    seen = []
    for layer in model.decoder:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.PixelShuffle)):
            seen.append(tuple(x.shape[1:]))
    assert seen == decoder_shapes
    final = model.decoder[-2]
    assert final.kernel_size == (1, 1) and final.bias is not None
    assert latent_shape(64, 64) == (128, 4, 4)


def test_output_clamped_to_40():
    model = Autoencoder(1)
    with torch.no_grad():
        model.decoder[-2].bias.fill_(1000.0)
    assert model(torch.zeros(1, 3, 64, 64)).max().item() == 40.0


def test_depth_to_space_order_on_hand_made_tensor():
    # 4 channels of a 1x1 map become one 2x2 channel: channel 2i+j goes to row i, column j.
    x = torch.tensor([10.0, 11.0, 12.0, 13.0]).view(1, 4, 1, 1)
    y = Autoencoder(1).decoder[0](x)
    assert y.shape == (1, 1, 2, 2)
    assert y[0, 0].tolist() == [[10.0, 11.0], [12.0, 13.0]]
    # with 8 channels, channels 0-3 make output channel 0 and 4-7 output channel 1
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert Autoencoder(1).decoder[0](x)[0, 1].tolist() == [[4.0, 5.0], [6.0, 7.0]]


def test_pixel_encoding_round_trip_and_range():
    v = torch.arange(256, dtype=torch.uint8)
    x = encode_pixels(v)
    assert x.min().item() == -2.0 and x.max().item() < 2.0
    assert torch.equal(decode_pixels(x), v)
    assert decode_pixels(torch.tensor([-40.0, 40.0, 0.0])).tolist() == [0, 255, 128]


def test_init_gives_a_live_network():
    torch.manual_seed(0)
    model = Autoencoder(1)
    init_weights(model)
    y = model(torch.rand(4, 3, 64, 64) * 4 - 2)
    assert y.std().item() > 0.05  # the signal survives all 17 layers
