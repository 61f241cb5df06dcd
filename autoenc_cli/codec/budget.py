"""What one picture's work may spend, in a module without torch: the command line shows and checks these before
torch is imported. Memory: tiles.py plans within it. Time: steps of refinement (refine.py)."""

import numbers

from autoenc_cli.errors import AutoencError, given_as

DEFAULT_MAX_MEMORY_MB = 1024  # encode, decode, eval --whole on a CPU: pictures beyond it go through in tiles
MIN_MAX_MEMORY_MB = 16  # below this not even the smallest tile of the seed network fits

MAX_REFINE_STEPS = 10_000  # --refine: far past where the curve flattens (docs/refine.md)


def check_steps(steps, option: str = "--refine") -> int:
    """--refine's value (refine= in Python: `option` names it): a whole number of steps from 0 (the encoder's one
    pass) to MAX_REFINE_STEPS."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"{option.lstrip('-')}: give a whole number of steps, not {type(steps).__name__} {steps!r}")
    if not 0 <= steps <= MAX_REFINE_STEPS:
        raise AutoencError(f"{given_as(option, steps)}: give 0 (the encoder's one pass) to {MAX_REFINE_STEPS:,} steps")
    return int(steps)
