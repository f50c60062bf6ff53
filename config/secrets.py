"""OAuth tokens at rest, encrypted, one file per connector.

A token grants read access to someone's mailbox, so it never sits on disk in
the clear: each connector's authorized-user record is JSON encrypted with
Fernet (AES-128-CBC plus HMAC-SHA256, from ``cryptography``) in
``<directory>/<connector name>.token``. The key comes from the environment
variable ``CRM_SYNC_SECRET_KEY`` or from a key file that :func:`ensure_key_file`
creates with mode 0600. The variable may hold several comma-separated keys:
the first encrypts, all decrypt, so a key can be rotated without losing tokens.

The directory is kept at mode 0700 and every file at 0600. A write goes to a
temporary file in the same directory, is flushed to disk and then renamed over
the old file, so a crash leaves the old token or the new one, never half of
either. Neither errors nor ``repr`` ever show a key or a token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from config.private_files import create_private_file, create_private_folders

KEY_ENV = "CRM_SYNC_SECRET_KEY"
_SUFFIX = ".token"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SecretStoreError(Exception):
    """A problem with the secret key or the token store; the message says what to do."""


def ensure_key_file(path: str | Path) -> Path:
    """Create a new random key at ``path`` (mode 0600) unless one is there; return the path."""
    path = Path(path)
    create_private_file(path, Fernet.generate_key() + b"\n")
    return path


def load_key(
    key_file: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> MultiFernet:
    """The key from ``CRM_SYNC_SECRET_KEY``, else from ``key_file``.

    A key file that others can read is refused, as ssh refuses such a private key.
    """
    text, source = _key_text(key_file, environ)
    try:
        return MultiFernet([Fernet(part.strip()) for part in text.split(",") if part.strip()])
    except ValueError:
        raise SecretStoreError(
            f"{source} does not hold a valid key (32 url-safe base64-encoded bytes, "
            "as `crm-sync init` writes)"
        ) from None


def derive_secret(
    purpose: str, key_file: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> str:
    """A secret for ``purpose`` (signing web sessions, say) derived from the key, so that
    every process holding the key agrees on it without another secret to distribute,
    and knowing it tells nothing about the key that encrypts the tokens."""
    load_key(key_file, environ=environ)
    text, _ = _key_text(key_file, environ)
    first = next(part.strip() for part in text.split(",") if part.strip())
    return hmac.new(first.encode("ascii"), purpose.encode(), hashlib.sha256).hexdigest()


def _key_text(key_file: str | Path | None, environ: Mapping[str, str] | None) -> tuple[str, str]:
    env = os.environ if environ is None else environ
    text = env.get(KEY_ENV, "").strip()
    source = f"environment variable {KEY_ENV}"
    if text:
        return text, source
    if key_file is None:
        raise SecretStoreError(
            f"no secret key: set {KEY_ENV} or configure a key file (`crm-sync init` makes one)"
        )
    path = Path(key_file)
    source = f"key file {path}"
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise SecretStoreError(f"{source} does not exist (`crm-sync init` makes one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretStoreError(f"cannot read {source}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretStoreError(f"{source} is readable by other users; run `chmod 600 {path}`")
    return text, source


class TokenStore:
    """Encrypted authorized-user records keyed by connector name."""

    def __init__(self, directory: str | Path, key: MultiFernet | Fernet) -> None:
        self.directory = Path(directory)
        self._fernet = key

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        key_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> TokenStore:
        """The store in ``directory`` with the configured key (see :func:`load_key`)."""
        return cls(directory, load_key(key_file, environ=environ))

    def __repr__(self) -> str:
        return f"TokenStore({str(self.directory)!r})"

    def save(self, name: str, record: Mapping[str, Any]) -> None:
        """Encrypt and store ``record`` for connector ``name``, replacing any earlier one."""
        path = self._path(name)
        self._ensure_directory()
        token = self._fernet.encrypt(json.dumps(dict(record), sort_keys=True).encode("utf-8"))
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(token)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        self._sync_directory()

    def load(self, name: str) -> dict[str, Any] | None:
        """The record stored for ``name``, or ``None`` when there is none."""
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(self._fernet.decrypt(data))
        except InvalidToken:
            raise SecretStoreError(
                f"cannot decrypt the token of connector {name!r} in {path}: the secret key "
                f"({KEY_ENV} or the key file) is not the one it was written with, or the file "
                f"is damaged; restore the key, or run `crm-sync connectors auth {name}` again"
            ) from None
        if not isinstance(record, dict):
            raise SecretStoreError(f"the token of connector {name!r} in {path} is not a record")
        return record

    def delete(self, name: str) -> bool:
        """Forget ``name``'s token; ``False`` if there was none."""
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        self._sync_directory()
        return True

    def names(self) -> list[str]:
        """Connectors with a stored token."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name[: -len(_SUFFIX)] for p in self.directory.glob(f"*{_SUFFIX}"))

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise SecretStoreError(f"not a valid connector name: {name!r}")
        return self.directory / f"{name}{_SUFFIX}"

    def _ensure_directory(self) -> None:
        create_private_folders(self.directory)
        if stat.S_IMODE(self.directory.stat().st_mode) != 0o700:
            self.directory.chmod(0o700)

    def _sync_directory(self) -> None:
        """Make the rename itself durable (POSIX: fsync the directory)."""
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
