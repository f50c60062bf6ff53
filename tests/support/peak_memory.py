"""A process's own peak resident memory, for tests and benchmarks that hold a command to
a figure. Only the standard library: a measured process imports this, and it must not
add to what it measures."""

from __future__ import annotations

import resource


def own_peak_rss_kib() -> int:
    """This process's peak RSS in KiB. ``VmHWM`` belongs to the memory this program
    mapped; ``ru_maxrss`` would carry over the parent's high-water mark through
    ``exec`` (after a fork, the forking process's), so a child of a large test process
    would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
