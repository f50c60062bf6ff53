"""How messages say counts and the commands they suggest.

A command a message suggests is copied and run as printed, so it must work
as printed: with ``--config PATH`` when the file it came from would not be
found without it, and with every flag the command requires.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from config.loader import DEFAULT_FILE, ENV_CONFIG


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``1 contact``, ``2 contacts``, ``0 companies`` (with ``plural`` given)."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def command_line(config_path: Path | None, *words: str) -> str:
    """``crm-sync WORDS`` quoted for a shell, naming ``config_path`` when it must be named."""
    prefix = ["crm-sync"]
    if config_path is not None and not _found_without_option(config_path):
        prefix += ["--config", str(config_path)]
    return shlex.join([*prefix, *words])


def _found_without_option(path: Path) -> bool:
    """Whether ``crm-sync`` run from here would read ``path`` without ``--config``."""
    from_env = os.environ.get(ENV_CONFIG)
    default = Path(from_env) if from_env else DEFAULT_FILE
    try:
        return default.resolve() == path.resolve()
    except OSError:
        return False
