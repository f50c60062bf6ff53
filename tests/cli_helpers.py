"""Running the real ``crm-sync`` entry point in a subprocess, as an admin would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``input`` is fed to stdin, which is then a pipe, never the terminal pytest runs in."""
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
    )


def start_cli(
    *args: str, cwd: Path, output: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``crm-sync`` in the background (the agent, ``run``), its stdout and stderr
    going to ``output`` (a file never fills up and blocks the agent the way a pipe can)."""
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
        )
