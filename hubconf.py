"""torch.hub entry point: `torch.hub.load("path/to/autoenc", "autoenc", source="local")` (a clone of the repository)
gives what `autoenc_cli.load()` gives (docs/python.md)."""

dependencies = ["torch", "numpy", "PIL", "safetensors", "rich", "typer"]


def autoenc(weights=None, device="cpu", max_memory=None):
    """The autoencoder with the bundled weights (or a weights file made by `autoenc train`): docs/python.md."""
    from autoenc_cli import load
    return load(weights, device, max_memory)
