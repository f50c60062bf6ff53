"""Processes a test started, found through Linux's /proc."""

from __future__ import annotations

from pathlib import Path


def children(pid: int) -> list[int]:
    """The processes ``pid`` started and that still run (none when /proc does not say)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []
