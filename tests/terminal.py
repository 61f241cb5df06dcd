"""Run `autoenc` in a pseudo-terminal, as a person types it: the command is the session leader with the terminal as
its controlling terminal, so rich draws its live bars and Ctrl-C (the byte 0x03) arrives as SIGINT from the line
discipline, not from a kill() of ours."""

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field

from conftest import autoenc_command


@dataclass
class TerminalRun:
    proc: subprocess.Popen
    master: int
    output: bytearray = field(default_factory=bytearray)

    def read(self, seconds: float) -> None:
        """Read what the command draws for up to `seconds` (less if it ends)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], max(0.0, min(0.2, end - time.monotonic())))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: every slave end closed (the command ended)
                    return
                if not chunk:
                    return
                self.output += chunk
            elif self.proc.poll() is not None:
                return

    def wait_for(self, text: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while text.encode() not in self.output and time.monotonic() < end and self.proc.poll() is None:
            self.read(0.2)
        self.read(0.1)
        return text.encode() in self.output

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self, timeout: float) -> int:
        """The exit status, or the command is killed (whole group) and the test fails with what was drawn."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self.read(0.2)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            os.close(self.master)
            raise AssertionError(f"still running after {timeout} s in a terminal; it drew:\n{self.text[-3000:]}")
        self.read(0.5)
        os.close(self.master)
        return self.proc.returncode

    @property
    def text(self) -> str:
        """What was drawn, without the terminal's control sequences (colours, cursor moves)."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.output.decode("utf-8", "replace"))


def start_in_terminal(args, columns: int = 120, rows: int = 30, cwd=None, env=None) -> TerminalRun:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    full_env.update(TERM="xterm-256color", **(env or {}))

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(autoenc_command() + [str(a) for a in args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=full_env, preexec_fn=controlling_terminal, close_fds=True)
    os.close(slave)
    return TerminalRun(proc, master)


def run_in_terminal(args, timeout: float = 120, **kw) -> tuple[int, str]:
    run = start_in_terminal(args, **kw)
    return run.finish(timeout), run.text
