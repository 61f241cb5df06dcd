"""One exception type for everything a user can get wrong; the CLI prints it as one line. Also how messages count."""

import re

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AutoencError(Exception):
    """A problem with the user's input, files or options (not a bug). Its message is one line, whatever file name it
    holds (the Python API shows it as it is; the command line prints it)."""

    def __init__(self, message: str = "", *more):
        super().__init__(one_line(str(message)), *more)


class SharedError(AutoencError):
    """A refusal every process of a torchrun job raises alike (rank 0 found it and told them): rank 0 says it."""


class Interrupted(AutoencError):
    """Ctrl-C (or SIGTERM) stopped the work after saving what was done; the message says how to continue."""
    exit_code = 130


def one_line(message: str) -> str:
    """A message as one line: a file name may hold a line break or other control characters, shown escaped."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], message)


def shown_name(option: str) -> str:
    """How a message names a setting: a command-line option as it is written (-o, --refine), a Python argument
    with its = (refine=, latent=), so that each side reads its own spelling."""
    return option if option.startswith("-") else f"{option}="


def given_as(option: str, value) -> str:
    """A value as the user gave it: `--refine -1` on the command line, `refine=-1` in Python."""
    return f"{option} {value}" if option.startswith("-") else f"{option}={value!r}"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 picture', '2 pictures', '1,000 steps', '2 processes'."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {plural or (noun + 'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else noun + 's')}"
