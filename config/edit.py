"""Changing the config file from the CLI without losing what the admin wrote in it.

The file is edited as a tomlkit document, so comments, blank lines, key order
and quoting survive every change. Each change is checked with
``config.parse_settings`` before anything is written, and the file is replaced
atomically (a temporary file in the same folder, flushed, then renamed over
it, with the old file's mode), so an admin never finds half a config or one
the agent refuses to start with.

Removing a ``[[connectors]]`` table drops its keys and the blank line that
set it apart, and nothing else: the comments and blank lines that followed
it (which tomlkit keeps inside the table) move to the end of whatever came
before it, where they stood in the text. Adding a table and removing it
again gives back the file byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Array, Comment, InlineTable, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from config import ConfigError, Settings, parse_settings

PLACEHOLDER = "0"
"""What an unset ``${VAR}`` stands for while a change is checked (see :class:`_AnyEnv`)."""


class _AnyEnv(Mapping[str, str]):
    """The environment, where every variable is set.

    The admin's shell need not hold the agent's secrets (the systemd unit
    does), so a ``${VAR}`` that is unset here must not block an edit; its
    value is checked when the agent loads the file.
    """

    def __init__(self, real: Mapping[str, str]) -> None:
        self._real = real

    def __getitem__(self, key: str) -> str:
        return self._real.get(key, PLACEHOLDER)

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._real)

    def __len__(self) -> int:
        return len(self._real)


def read(path: Path) -> TOMLDocument:
    """The file as an editable document; ConfigError when it is missing or not TOML."""
    try:
        return tomlkit.parse(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (run `crm-sync init` to write one)"]) from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None


def validate(document: TOMLDocument, path: Path | None) -> Settings:
    """The settings ``document`` describes; ConfigError naming every problem otherwise."""
    return parse_settings(document.unwrap(), path, env=_AnyEnv(os.environ))


def connector_names(document: TOMLDocument) -> list[str]:
    return [str(table.get("name", "")) for table in _connector_tables(document)]


def add_connector(document: TOMLDocument, values: Mapping[str, Any]) -> None:
    """Append one ``[[connectors]]`` table with ``values`` (in their order)."""
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, _toml_value(value))
    connectors = document.get("connectors")
    if connectors is None:
        aot = tomlkit.aot()
        aot.append(table)
        document.add("connectors", aot)
    elif isinstance(connectors, AoT):
        if connectors.body and not connectors.body[-1].as_string().endswith("\n\n"):
            table.trivia.indent = "\n"
        connectors.append(table)
    elif isinstance(connectors, Array):
        inline = tomlkit.inline_table()
        inline.update({key: _toml_value(value) for key, value in values.items()})
        connectors.append(inline)
    else:
        raise ConfigError(None, ["connectors: must be a list of tables"])


def remove_connector(document: TOMLDocument, name: str) -> None:
    """Remove the connector table named ``name``; KeyError if there is none."""
    connectors = document.get("connectors")
    index = connector_names(document).index(name) if connectors is not None else -1
    if index < 0:
        raise KeyError(name)
    if isinstance(connectors, Array):
        del connectors[index]
        return
    assert isinstance(connectors, AoT)
    trailing = _trailing_trivia(connectors.body[index])
    del connectors[index]
    if index > 0:
        before: Table | TOMLDocument = connectors.body[index - 1]
    else:
        found = _table_before(document, "connectors")
        before = document if found is None else found  # an empty table is still the one
    if not connectors.body:
        document.remove("connectors")
    _drop_blank_tail(before)
    for item in trailing:
        before.add(item)


def write(path: Path, document: TOMLDocument) -> Settings:
    """Check ``document``, then replace ``path`` with it atomically; return its settings."""
    settings = validate(document, path)
    text = tomlkit.dumps(document)
    if text and not text.endswith("\n"):
        text += "\n"
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return settings


def _connector_tables(document: TOMLDocument) -> list[Table | InlineTable]:
    connectors = document.get("connectors")
    if isinstance(connectors, AoT):
        return list(connectors.body)
    if isinstance(connectors, Array):
        return [t for t in connectors if isinstance(t, InlineTable | Table)]
    return []


def _toml_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_toml_value(v) for v in value]
    return value


def _trailing_trivia(table: Table) -> list[Comment | Whitespace]:
    """The comments and blank lines after a table's last key (tomlkit files them in the table)."""
    body = table.value.body
    last_key = max((i for i, (key, _) in enumerate(body) if key is not None), default=-1)
    return [item for _, item in body[last_key + 1 :] if isinstance(item, Comment | Whitespace)]


def _drop_blank_tail(container: Table | TOMLDocument) -> None:
    """Drop the blank line that separated the removed table from what came before it."""
    body = container.value.body if isinstance(container, Table) else container.body
    key, item = body[-1] if body else ("", None)
    if key is None and isinstance(item, Whitespace) and not item.as_string().strip("\n"):
        body.pop()


def _table_before(document: TOMLDocument, key: str) -> Table | None:
    """The last top-level table written before ``key``'s first table."""
    found: Table | None = None
    for name, item in document.body:
        if name is not None and name.key == key:
            return found
        if isinstance(item, Table):
            found = item
    return found
