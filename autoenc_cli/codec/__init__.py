"""The codec: pictures in, latents out and back. The network's passes and the files (encoding.py), exact tiles for
any size (tiles.py), latent files (latentfile.py), stacks (stack.py), refinement (refine.py), what a user hands it
(inputs.py, budget.py), ONNX export (export.py), and the measures reconstructions are judged by (metrics.py). Pictures
are read and folders walked by autoenc_cli.data.

May import: autoenc_cli.data, model, errors, fileio.
"""
