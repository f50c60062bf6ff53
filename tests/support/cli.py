"""Running the real ``crm-sync`` entry point as an admin would: in a subprocess, or in
this process where a table of cases needs only exit statuses and messages."""

from __future__ import annotations

import inspect
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.peak_memory import own_peak_rss_kib


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


_MEASURED_LAUNCH = f"""
import atexit, os, resource, runpy

{inspect.getsource(own_peak_rss_kib)}

def _report() -> None:
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(os.environ["MEASURED_PEAK_FILE"], "w") as out:
        out.write(str(max(own_peak_rss_kib(), workers)))

atexit.register(_report)
runpy.run_module("agent", run_name="__main__", alter_sys=True)
"""
"""``python -m agent`` that writes its own peak RSS (KiB) when it exits, read as
:func:`~tests.support.peak_memory.own_peak_rss_kib` reads it (its source is inlined:
the command runs where ``tests`` is not importable)."""


def run_measured(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> Measured:
    """``run_cli``, with the peak resident memory of that one command (its own, and its
    largest worker's), so a test can hold it to a cap whatever the test run did before."""
    out, err, peak = cwd / ".measured.out", cwd / ".measured.err", cwd / ".measured.peak"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_SYNC_")}
    environment.update(env or {})
    environment.setdefault("COLUMNS", "200")
    environment["MEASURED_PEAK_FILE"] = str(peak)
    peak.unlink(missing_ok=True)
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", _MEASURED_LAUNCH, *args],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if not peak.exists():
        raise AssertionError(f"crm-sync {' '.join(args)} exited without reporting its memory")
    return Measured(
        returncode=process.returncode,
        stdout=out.read_text(errors="replace"),
        stderr=err.read_text(errors="replace"),
        seconds=time.monotonic() - started,
        peak_rss_mib=int(peak.read_text()) / 1024,
    )


FAST_AGENT = {"CRM_SYNC_MIN_INTERVAL": "0.1s"}
"""The environment of an agent whose test needs it to tick faster than a config may ask
(``config.schema.MIN_INTERVAL``): pass it as ``env``."""


def write_config(folder: Path, database_url: str | None = None, body: str = "") -> Path:
    """A minimal ``crm-sync.toml`` in ``folder``: the database (by default ``crm-sync.db``
    beside it) and ``body`` after it; every command but ``init`` needs one."""
    url = database_url or "sqlite:///crm-sync.db"
    config = folder / "crm-sync.toml"
    config.write_text(f'[database]\nurl = "{url}"\n{body}')
    return config


def upgrade_database(folder: Path, *options: str, env: Mapping[str, str] | None = None) -> None:
    """``crm-sync [options] db upgrade`` in ``folder``: the one command that creates the
    database, which every other needs done first."""
    result = run_cli(*options, "db", "upgrade", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr


@dataclass(frozen=True)
class Ran:
    """A command run in this process: its exit status, stdout and stderr."""

    code: int
    stdout: str
    stderr: str


def run_in_process(
    *args: str,
    cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: Mapping[str, str] | None = None,
) -> Ran:
    """The real entry point, run in this process: for tables of cases that each need only
    an exit status and a message, where a process each would cost a second apiece. The
    environment is the test's without ``CRM_SYNC_*``, plus ``env``, as for :func:`run_cli`."""
    from agent.cli.main import main

    monkeypatch.chdir(cwd)
    for name in [n for n in os.environ if n.startswith("CRM_SYNC_")]:
        monkeypatch.delenv(name)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    capsys.readouterr()
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)
