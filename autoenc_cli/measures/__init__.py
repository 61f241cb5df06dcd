"""Measures of trained weights: eval against bicubic and JPEG (evaluate.py), rate against distortion
(ratedistortion.py), odd pictures and where they are odd (score.py, heatmap.py), this machine's speed (bench.py).

May import: autoenc_cli.training, codec, model, errors, fileio.
"""
