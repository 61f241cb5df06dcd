"""Terminal output that never stops the work: once the reader of stdout or stderr has gone (`| tee log`
and Ctrl-C, which the terminal sends to tee too), writes are dropped silently, so a save still happens."""

import errno
import os
import sys


class QuietWhenClosed:
    """sys.stdout or sys.stderr (looked up at each write, so test runners that swap them still see the text)."""

    def __init__(self, name: str):
        self.name = name
        self.gone = False

    @property
    def stream(self):
        return getattr(sys, self.name)

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except OSError as e:
                self.closed_by_reader(e)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except OSError as e:
                self.closed_by_reader(e)

    def closed_by_reader(self, e: OSError) -> None:
        if not isinstance(e, BrokenPipeError) and e.errno not in (errno.EPIPE, errno.EINVAL):
            raise e
        self.gone = True
        try:  # what Python's docs advise: the exit's own flush of this stream then goes nowhere, quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass

    def isatty(self) -> bool:
        try:
            return self.stream.isatty()
        except (OSError, ValueError, AttributeError):
            return False

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"
