"""Handing memory freed by a batch back to the operating system.

A batch of mail with attachments passes through the syncing process as tens of
megabytes of raw bytes and the parser's copies of them. Python frees them as
soon as the batch is planned, but glibc's allocator keeps what was freed mapped
in its heap, where the next batch's allocations rarely fit: the agent's
resident memory would stay at its high-water mark, and creep up past it, for
as long as it runs. ``malloc_trim`` returns the free pages. Where the C
library is not glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache

TRIM_AFTER_BYTES = 4 * 1024 * 1024
"""Raw mail a batch must have held for the memory it freed to be worth handing back."""


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up among the symbols this process has loaded
    (``ctypes.util.find_library`` would run ``ldconfig`` in a subprocess, a fork of a
    process that may hold hundreds of megabytes)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed(raw_bytes: int) -> bool:
    """After a batch that held ``raw_bytes`` of mail: give free heap pages back to the
    system, if it held enough for that to matter; whether it was tried."""
    trim = _malloc_trim()
    if trim is None or raw_bytes < TRIM_AFTER_BYTES:
        return False
    trim(0)
    return True
