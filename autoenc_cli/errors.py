"""One exception type for everything a user can get wrong; the CLI prints it as one line."""

import re

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AutoencError(Exception):
    """A problem with the user's input, files or options (not a bug). Its message is one line, whatever file name it
    holds (the Python API shows it as it is; the command line prints it)."""

    def __init__(self, message: str = "", *more):
        super().__init__(one_line(str(message)), *more)


def one_line(message: str) -> str:
    """A message as one line: a file name may hold a line break or other control characters, shown escaped."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
