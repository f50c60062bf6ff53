"""The encrypted token store: round trips, keys, permissions, nothing readable on disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config.secrets import KEY_ENV, SecretStoreError, TokenStore, ensure_key_file, load_key

RECORD = {
    "token": "ya29.secret-access-token",
    "refresh_token": "1//secret-refresh-token",
    "client_id": "client.apps.googleusercontent.com",
    "client_secret": "GOCSPX-secret",
    "token_uri": "https://oauth2.googleapis.com/token",
    "scopes": ["https://www.googleapis.com/auth/gmail.metadata"],
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    key_file = ensure_key_file(tmp_path / "keys" / "secret.key")
    return TokenStore.open(tmp_path / "tokens", key_file=key_file, environ={})


def test_round_trip(store: TokenStore) -> None:
    assert store.load("alice-gmail") is None
    store.save("alice-gmail", RECORD)
    store.save("bob.calendar", {"refresh_token": "r"})
    assert store.load("alice-gmail") == RECORD
    assert store.names() == ["alice-gmail", "bob.calendar"]
    assert store.delete("bob.calendar") and not store.delete("bob.calendar")
    assert store.names() == ["alice-gmail"]


def test_save_replaces_atomically(store: TokenStore) -> None:
    store.save("alice-gmail", RECORD)
    store.save("alice-gmail", {**RECORD, "token": "ya29.newer"})
    assert store.load("alice-gmail") == {**RECORD, "token": "ya29.newer"}
    assert sorted(p.name for p in store.directory.iterdir()) == ["alice-gmail.token"]


def test_nothing_readable_on_disk(store: TokenStore, tmp_path: Path) -> None:
    store.save("alice-gmail", RECORD)
    secrets = [v.encode() for v in RECORD.values() if isinstance(v, str)]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret in data for secret in secrets), path
    assert "secret" not in repr(store)


def test_permissions(tmp_path: Path) -> None:
    key_file = ensure_key_file(tmp_path / "secret.key")
    assert mode(key_file) == 0o600
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    store = TokenStore.open(directory, key_file=key_file, environ={})
    store.save("alice-gmail", RECORD)
    assert mode(directory) == 0o700
    assert mode(directory / "alice-gmail.token") == 0o600


def test_ensure_key_file_keeps_an_existing_key(tmp_path: Path) -> None:
    path = ensure_key_file(tmp_path / "secret.key")
    first = path.read_bytes()
    assert ensure_key_file(path) == path
    assert path.read_bytes() == first
    Fernet(first.strip())


def test_wrong_key_is_a_clear_error(store: TokenStore, tmp_path: Path) -> None:
    store.save("alice-gmail", RECORD)
    other = TokenStore(store.directory, load_key(environ={KEY_ENV: Fernet.generate_key().decode()}))
    with pytest.raises(SecretStoreError) as raised:
        other.load("alice-gmail")
    message = str(raised.value)
    assert "not the one it was written with" in message
    assert "crm-sync connectors auth alice-gmail" in message
    assert "secret" not in message.replace("secret key", "")


def test_damaged_file_is_a_clear_error(store: TokenStore) -> None:
    store.save("alice-gmail", RECORD)
    path = store.directory / "alice-gmail.token"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(SecretStoreError, match="damaged"):
        store.load("alice-gmail")


def test_environment_key_wins_and_rotates(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    key_file = ensure_key_file(tmp_path / "secret.key")
    TokenStore.open(tmp_path / "t", key_file=key_file, environ={KEY_ENV: old}).save("a", RECORD)
    rotated = TokenStore.open(tmp_path / "t", key_file=key_file, environ={KEY_ENV: f"{new},{old}"})
    assert rotated.load("a") == RECORD
    rotated.save("a", RECORD)
    assert TokenStore.open(tmp_path / "t", environ={KEY_ENV: new}).load("a") == RECORD


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-key", "no secret key"),
        ("missing-file", "does not exist"),
        ("bad-env", "does not hold a valid key"),
        ("bad-file", "does not hold a valid key"),
        ("loose-file", "chmod 600"),
    ],
    ids=["no-key", "missing-file", "bad-env", "bad-file", "loose-file"],
)
def test_key_problems_are_clear(tmp_path: Path, setup: str, message: str) -> None:
    key_file: Path | None = tmp_path / "secret.key"
    environ: dict[str, str] = {}
    if setup == "no-key":
        key_file = None
    elif setup == "bad-env":
        environ[KEY_ENV] = "not-a-key"
    elif setup == "bad-file":
        assert key_file is not None
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"short")
        os.close(fd)
    elif setup == "loose-file":
        key_file = ensure_key_file(tmp_path / "secret.key")
        key_file.chmod(0o644)
    with pytest.raises(SecretStoreError, match=message):
        load_key(key_file, environ=environ)


@pytest.mark.parametrize("name", ["../escape", "", ".hidden", "a/b", "a b"])
def test_names_cannot_escape_the_directory(store: TokenStore, name: str) -> None:
    with pytest.raises(SecretStoreError, match="not a valid connector name"):
        store.save(name, RECORD)
