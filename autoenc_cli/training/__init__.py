"""Training: the loop (train.py) and its guard (guard.py), settings (config.py), datasets and their cache (data.py,
photos.py, sources.py), checkpoints and log.csv (checkpoint.py), signals and torchrun (processes.py), Adam
(optim.py), the Tiny ImageNet download (download.py), training curves (plot.py).

May import: autoenc_cli.codec, model, errors, fileio.
"""
