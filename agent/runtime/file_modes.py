"""Files that hold the contacts or open the mailboxes, and whether other users can read them.

crm-sync creates the SQLite database (with its ``-wal`` and ``-shm``), the
token key and the token store owner-only. One made earlier or by hand keeps
the mode its admin gave it -- a deliberate group read is not undone behind
anyone's back -- so ``status`` names each loose one with the command that
fixes it.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from storage.db import sqlite_path

_FILE_LOOSE = 0o066  # read or write for group or others
_FOLDER_LOOSE = 0o077  # a listing of the token folder names the mailboxes too


@dataclass(frozen=True)
class LooseFile:
    path: Path
    mode: int
    folder: bool

    def warning(self) -> str:
        wanted = "700" if self.folder else "600"
        return (
            f"warning: {self.path} has mode {self.mode:04o}: other users can read or change it; "
            f"run `chmod {wanted} {self.path}`"
        )


def loose_files(settings: Settings, base: Path) -> list[LooseFile]:
    """The private files that exist and that group or others may read or write."""
    found: list[LooseFile] = []
    for path, folder in _private_paths(settings, base):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & (_FOLDER_LOOSE if folder else _FILE_LOOSE):
            found.append(LooseFile(path.absolute(), mode, folder))
    return found


def _private_paths(settings: Settings, base: Path) -> Iterator[tuple[Path, bool]]:
    """``(path, is a folder)`` for every file that must stay owner-only."""
    database = sqlite_path(settings.database.url)
    if database is not None:
        for suffix in ("", "-wal", "-shm"):
            yield database.with_name(database.name + suffix), False
    yield base / settings.secrets.key_file, False
    tokens = base / settings.secrets.token_dir
    yield tokens, True
    if tokens.is_dir():
        for token in sorted(tokens.glob("*.token")):
            yield token, False
