"""Running the real ``crm-sync`` entry point in a subprocess, as an admin would."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    input: str | None = None,
    umask: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """``input`` is fed to stdin, which is then a pipe, never the terminal pytest runs in;
    ``umask``, when given, is the process's (file modes must not depend on the caller's)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_SYNC_")}
    environment.update(env or {})
    environment.setdefault("COLUMNS", "200")
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        env=environment,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        umask=-1 if umask is None else umask,
    )


def start_cli(
    *args: str,
    cwd: Path,
    output: Path,
    env: Mapping[str, str] | None = None,
    umask: int | None = None,
    rlimit_as: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``crm-sync`` in the background (the agent, ``run``), its stdout and stderr
    going to ``output`` (a file never fills up and blocks the agent the way a pipe can).
    ``rlimit_as`` caps its address space (``RLIMIT_AS``, as ``prlimit --as`` does)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_SYNC_")}
    environment.update(env or {})
    with output.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "agent", *args],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            umask=-1 if umask is None else umask,
            preexec_fn=None if rlimit_as is None else _address_space(rlimit_as),
        )


def _address_space(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


@dataclass(frozen=True)
class Measured:
    """A finished ``crm-sync`` run with what it cost: wall time and the kernel's peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mib: float


def run_measured(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> Measured:
    """``run_cli``, with the peak resident memory of that one process (``wait4``'s rusage),
    so a test can hold a command to a memory cap whatever else the test run did before."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_SYNC_")}
    environment.update(env or {})
    environment.setdefault("COLUMNS", "200")
    out, err = cwd / ".measured.out", cwd / ".measured.err"
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", *args],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        returncode=process.returncode,
        stdout=out.read_text(errors="replace"),
        stderr=err.read_text(errors="replace"),
        seconds=time.monotonic() - started,
        peak_rss_mib=usage.ru_maxrss / 1024,
    )
