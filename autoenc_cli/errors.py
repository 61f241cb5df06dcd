"""One exception type for everything a user can get wrong; the CLI prints it as one line."""

import re

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AutoencError(Exception):
    """A problem with the user's input, files or options (not a bug)."""


def one_line(message: str) -> str:
    """A message as one line: a file name may hold a line break or other control characters, shown escaped."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
