"""Running ``crm-sync`` on a pseudo-terminal, answering its questions as a person would.

``run_cli`` gives the command a pipe for stdin, so it knows no one is there
to ask. Here stdin, stdout and stderr are one terminal: the command sees a
person, its prompts arrive as they would on a screen, and each answer is
typed only once the question that takes it has been shown.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass(frozen=True)
class Session:
    """A finished run: its exit status and the screen as a person saw it (answers echoed)."""

    returncode: int
    screen: str


def run_on_terminal(
    *args: str,
    cwd: Path,
    answers: Sequence[tuple[str, str]] = (),
    env: Mapping[str, str] | None = None,
    columns: int = 80,
    timeout: float = 60,
) -> Session:
    """Run ``crm-sync ARGS``; for each ``(prompt, answer)``, wait for ``prompt`` then type
    ``answer`` and Enter. Fails with the screen so far when a prompt does not come."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_SYNC_")}
    environment.update({"TERM": "xterm", "COLUMNS": str(columns), **(env or {})})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        env=environment,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=_own_terminal,
    )
    os.close(slave)
    screen = _Screen(master, time.monotonic() + timeout)
    try:
        for prompt, answer in answers:
            screen.wait_for(prompt)
            os.write(master, answer.encode() + b"\r")
        screen.read_to_end()
        returncode = process.wait(timeout=max(1.0, screen.deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return Session(returncode, screen.text())


def _own_terminal() -> None:
    """In the child: a session of its own, with the terminal as its controlling one, so that
    Ctrl-C typed on it interrupts the command as it would at a shell."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class _Screen:
    def __init__(self, fd: int, deadline: float) -> None:
        self.fd = fd
        self.deadline = deadline
        self.raw = b""
        self.seen = 0

    def text(self) -> str:
        return _ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r\n", "\n")

    def wait_for(self, prompt: str) -> None:
        while True:
            found = self.text().find(prompt, self.seen)
            if found >= 0:
                self.seen = found + len(prompt)
                return
            if not self._read():
                raise AssertionError(f"no prompt {prompt!r}; the screen:\n{self.text()}")

    def read_to_end(self) -> None:
        while self._read():
            pass

    def _read(self) -> bool:
        """False at the end of output or past the deadline."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], left)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the command closed the terminal
            return False
        self.raw += chunk
        return bool(chunk)
