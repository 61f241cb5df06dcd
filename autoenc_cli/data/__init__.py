"""The data path, below the codec, the measures and training, read top to bottom:

- listing.py: the image files of folders and of a command's inputs;
- reading.py: one way to open a picture (any mode -> 8-bit RGB), the worker processes that decode many;
- splits.py: a dataset's layout (Tiny ImageNet or a folder), its train/validation split, a fraction of each class;
- cache.py: pictures decoded once into uint8 `.npy` files (64x64 rows), keyed by the files;
- pyramids.py: photographs of any size decoded once into pyramids;
- windows.py: random 64x64 windows at random scales cut from the pyramids;
- sources.py: training's batches (thumbnails or windows), epoch by epoch;
- shards.py: the share of the pictures each process (and each machine) works on under torchrun, and a machine's
  cache built by all of its processes together.

May import: autoenc_cli.model, errors, fileio.
"""
