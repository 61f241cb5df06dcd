"""Training: the loop (train.py) and its guard (guard.py), settings (config.py), checkpoints and log.csv
(checkpoint.py), signals and torchrun (processes.py), Adam (optim.py), the Tiny ImageNet download (download.py),
training curves (plot.py). Its data (datasets, caches, windows, batches) come from autoenc_cli.data.

May import: autoenc_cli.codec, data, model, errors, fileio.
"""
