"""Measures of trained weights: eval against bicubic and JPEG (evaluate.py), rate against distortion
(ratedistortion.py), odd pictures and where they are odd (score.py, heatmap.py), the speed of the machine it runs on (bench.py).

May import: autoenc_cli.training, codec, data, model, errors, fileio.
"""

# Steps of bench's timed `autoenc train` (here, not in bench.py, so that the command line shows it without torch):
# six log windows, the first (the start) left out of the loop's rate. One epoch was too short on a GPU: 28 steps of
# 512 ended before the first log window ("loop nan img/s").
TIMED_STEPS = 300
