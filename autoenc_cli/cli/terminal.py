"""Terminal output that never stops the work, and shell completion for the shell a user names.

Once the reader of stdout or stderr has gone (`| tee log` and Ctrl-C, which the terminal sends to tee too),
writes are dropped silently, so a save still happens."""

import errno
import os
import sys


class QuietWhenClosed:
    """The stream it was given (sys.stdout or sys.stderr as a command starts), never whatever sys.stdout is at the
    moment of a write: while a rich live display runs, sys.stdout is rich's FileProxy, which prints into the
    console that writes here, and looking it up at each write looped forever in a terminal (rich 15)."""

    def __init__(self, stream):
        self.stream = getattr(stream, "rich_proxied_file", stream)  # a proxy of rich's already: the file behind it
        self.gone = False

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


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def named_shell_completion(args: list[str]) -> None:
    """`--show-completion SHELL` / `--install-completion SHELL` for the shell named: where Typer can detect the
    running shell it makes both options plain flags, and a shell name given after them was ignored."""
    if len(args) != 2 or args[0] not in ("--show-completion", "--install-completion") or args[1] not in SHELLS:
        return
    from typer._completion_shared import get_completion_script, install
    stdout = QuietWhenClosed(sys.stdout)  # `| head` may close it: no traceback for that
    if args[0] == "--show-completion":
        stdout.write(get_completion_script(prog_name="autoenc", complete_var="_AUTOENC_COMPLETE", shell=args[1]) + "\n")
    else:
        shell, path = install(shell=args[1], prog_name="autoenc", complete_var="_AUTOENC_COMPLETE")
        stdout.write(f"{shell} completion installed in {path}\nCompletion will take effect once you restart the terminal\n")
    stdout.flush()
    sys.exit(0)
