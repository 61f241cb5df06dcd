"""autoenc: train and run the seed's convolutional image autoencoder, from the shell (`autoenc`) or from Python:

    import autoenc_cli
    ae = autoenc_cli.load()                      # the bundled weights; load("run/model.safetensors", device="cuda")
    z = ae.encode(Image.open("photo.jpg"))       # float32 (128, H/16, W/16)
    ae.decode(z).save("photo.rec.png")

load, Codec, train and AutoencError are the public API (docs/python.md); nothing else is promised.
"""

__version__ = "0.1.0"
__all__ = ["AutoencError", "Codec", "TrainingProgress", "load", "train", "__version__"]


def __getattr__(name: str):
    """The API is imported on first use: `autoenc --help` and `import autoenc_cli` stay quick (no torch)."""
    if name in __all__:
        from autoenc_cli import api
        return getattr(api, name)
    raise AttributeError(f"module 'autoenc_cli' has no attribute {name!r}")
