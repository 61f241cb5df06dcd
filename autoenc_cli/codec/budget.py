"""The memory budget of one picture's pass (tiles.py plans within it), in a module without torch: the command
line shows and checks it before torch is imported."""

DEFAULT_MAX_MEMORY_MB = 1024  # encode, decode, eval --whole on a CPU: pictures beyond it go through in tiles
MIN_MAX_MEMORY_MB = 16  # below this not even the smallest tile of the seed network fits
