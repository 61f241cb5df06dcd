"""Terminal output that never stops the work, and shell completion for the shell a user names.

Once the reader of stdout or stderr has gone (`| tee log` and Ctrl-C, which the terminal sends to tee too),
writes are dropped silently, so a save still happens."""

import codecs
import errno
import os
import sys


class QuietWhenClosed:
    """The stream it was given (sys.stdout or sys.stderr as a command starts), never whatever sys.stdout is at the
    moment of a write: while a rich live display runs, sys.stdout is rich's FileProxy, which prints into the
    console that writes here, and looking it up at each write looped forever in a terminal (rich 15).

    Text the stream's encoding cannot carry (a file name that is not UTF-8, under a strict or ASCII stdout) goes out
    as the bytes the system gave, or as backslash escapes; any other failure to write (a full disk) becomes one
    AutoencError naming the stream, and what is still buffered is dropped, so that exiting does not fail again."""

    def __init__(self, stream, report: bool = True):
        self.stream = getattr(stream, "rich_proxied_file", stream)  # a proxy of rich's already: the file behind it
        self.gone = False
        self.report = report  # False for stderr: where else would its own failure be told?

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                try:
                    self.stream.write(text)
                except UnicodeEncodeError:
                    self.write_bytes(text)
            except OSError as e:
                self.failed(e)
        return len(text)

    def write_bytes(self, text: str) -> None:
        data = text.encode(self.encoding, "autoenc.names")
        buffer = getattr(self.stream, "buffer", None)
        if buffer is None:  # a text-only stream: escapes it can carry
            self.stream.write(data.decode(self.encoding, "backslashreplace"))
            return
        self.stream.flush()  # what was written before goes first
        buffer.write(data)
        buffer.flush()

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except OSError as e:
                self.failed(e)

    def failed(self, e: OSError) -> None:
        """The reader has gone (a closed pipe): quiet from now on. Any other error: AutoencError, once."""
        self.gone = True
        try:  # what Python's docs advise: the exit's own flush of this stream then goes nowhere, quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        if isinstance(e, BrokenPipeError) or e.errno in (errno.EPIPE, errno.EINVAL) or not self.report:
            return
        from autoenc_cli.errors import AutoencError
        raise AutoencError(f"{self.name}: cannot write: {e.strerror or e}") from None

    @property
    def name(self) -> str:
        name = getattr(self.stream, "name", None)
        return name.strip("<>") if isinstance(name, str) else "output"

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


def names_as_given(error: UnicodeEncodeError):
    """An encoding error handler: a file name's bytes that are not UTF-8 (surrogateescape's U+DC80..U+DCFF) as
    those bytes; any other character the encoding lacks as a backslash escape."""
    text = error.object[error.start:error.end]
    if all("\udc80" <= c <= "\udcff" for c in text):
        return bytes(ord(c) - 0xDC00 for c in text), error.end
    return codecs.backslashreplace_errors(error)


codecs.register_error("autoenc.names", names_as_given)


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
