"""torch.hub entry point: `torch.hub.load("OWNER/autoenc", "autoenc")` gives what `autoenc_cli.load()` gives."""

dependencies = ["torch", "numpy", "PIL", "safetensors", "rich", "typer"]


def autoenc(weights=None, device="cpu", max_memory=None):
    """The autoencoder with the bundled weights (or a weights file made by `autoenc train`): docs/python.md."""
    from autoenc_cli import load
    return load(weights, device, max_memory)
