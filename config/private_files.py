"""Files only crm-sync's user may read: the database, its lock, the token key, the tokens.

They hold every contact and the grants to every mailbox. A file created
with the process's umask is usually world-readable (0644), so these are
created owner-only whatever the umask: 0600 for files, 0700 for the folders
crm-sync makes for them. Files and folders that exist keep the mode their
admin gave them; ``crm-sync status`` warns when it is loose.
"""

from __future__ import annotations

import os
from pathlib import Path


def create_private_folders(folder: Path) -> None:
    """The missing folders up to ``folder``, mode 0700; existing ones keep their mode."""
    missing: list[Path] = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir()
        except FileExistsError:
            continue
        created.chmod(0o700)


def create_private_file(path: Path, content: bytes = b"") -> bool:
    """Create ``path`` (and its folders) with mode 0600 holding ``content``, synced to disk.

    False when the file exists already: it is left as it is.
    """
    create_private_folders(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)  # a umask such as 0277 takes bits off the owner too
        if content:
            os.write(fd, content)
            os.fsync(fd)
    finally:
        os.close(fd)
    return True
