"""The model: the seed's network (autoencoder.py, one line per layer; kernels.py, its fused kernels), its pixel
encodings (color.py), its weights files (weights.py), where it runs (hardware.py), its layer table (architecture.py).

May import: torch, numpy, pillow, safetensors, and autoenc_cli.errors / autoenc_cli.fileio. Nothing above it.
"""
