"""Processes a test started, found through Linux's /proc."""

from __future__ import annotations

import os
from pathlib import Path

ESTABLISHED = "01"
LISTENING = "0A"
"""/proc/net/tcp's codes for a TCP socket's state."""


def children(pid: int) -> list[int]:
    """The processes ``pid`` started and that still run (none when /proc does not say)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def sockets_on_port(pids: list[int], port: int, state: str) -> dict[int, set[str]]:
    """The sockets on local ``port`` in ``state`` (:data:`ESTABLISHED`, :data:`LISTENING`)
    that each of ``pids`` holds; a process holding none is left out."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(f"socket:[{fields[9]}]")
    held: dict[int, set[str]] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # it ended meanwhile
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in inodes:
                held.setdefault(pid, set()).add(target)
    return held


def connections_held(pids: list[int], port: int) -> list[int]:
    """How many established connections on local ``port`` each of ``pids`` holds, most first
    (a process holding none counts 0)."""
    held = sockets_on_port(pids, port, ESTABLISHED)
    return sorted((len(held.get(pid, ())) for pid in pids), reverse=True)
