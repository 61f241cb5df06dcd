"""The codec: pictures in, latents out and back. Reading pictures and walking folders (pictures.py), the network's
passes and the files (encoding.py), exact tiles for any size (tiles.py), latent files (latentfile.py), stacks
(stack.py), ONNX export (export.py), and the measures reconstructions are judged by (metrics.py).

May import: autoenc_cli.model, errors, fileio.
"""
