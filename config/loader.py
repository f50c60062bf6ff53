"""Finding, reading and validating the config file.

Errors name the file, the key path as a user would write it
(``connectors[1].account``) and what was wrong, because an admin fixing a
config should never have to guess which line a message is about.

Every command but ``init`` needs a config file: built-in defaults would put
a database wherever a command happened to run, so none is ever assumed.

``${VAR}`` references are expanded as the file is read, and an unset one is
an error naming its key -- except inside a ``[[connectors]]`` table. There
the value is kept as written and resolved when that connector is built
(:func:`resolve`), so a mailbox whose password is missing from the
environment fails alone while every other connector and command works. A key
the schema must check as the file is read (an account, a port, a flag) still
needs its variable then.

``$CRM_SYNC_MIN_INTERVAL`` lowers the shortest interval a config may ask for
(:data:`config.schema.MIN_INTERVAL`). It exists for test suites and
benchmarks whose agent must tick every second, never for a deployment.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.schema import (
    CONNECTOR_KINDS,
    MIN_INTERVAL,
    MIN_INTERVAL_CONTEXT,
    UNRESOLVED_CONTEXT,
    ConnectorConfig,
    DatabaseConfig,
    Settings,
    Unresolved,
    parse_duration,
)

ENV_CONFIG = "CRM_SYNC_CONFIG"
ENV_DATABASE_URL = "CRM_SYNC_DATABASE_URL"
ENV_MIN_INTERVAL = "CRM_SYNC_MIN_INTERVAL"
DEFAULT_FILE = Path("crm-sync.toml")
NO_CONFIG = (
    f"no config file: none named with --config or ${ENV_CONFIG}, and no ./{DEFAULT_FILE} "
    "here; run `crm-sync init` to write one"
)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NOT_REPEATED = frozenset({"url", "password"})
"""Keys whose value may hold a secret: an error about them never repeats the value."""


class ConfigError(Exception):
    """A config problem an admin must fix; the CLI prints it and exits with status 2."""

    def __init__(self, path: Path | None, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        where = str(path) if path else "configuration"
        super().__init__(f"{where}: " + "; ".join(problems))


class ConnectorConfigError(ConfigError, ValueError):
    """A connector's value resolved when it is built is unset or wrong: that connector
    cannot start (its status says why), every other one can."""


class VariableUnset(ConnectorConfigError):
    """A connector's ``${VAR}`` still unset when the connector is built."""


def find_config(explicit: Path | None) -> Path:
    """The file to read: ``--config``, then ``$CRM_SYNC_CONFIG``, then ``./crm-sync.toml``.

    A ConfigError (:data:`NO_CONFIG`) when no file is named and the default
    does not exist.
    """
    if explicit is not None:
        return explicit
    from_env = os.environ.get(ENV_CONFIG)
    if from_env:
        return Path(from_env)
    if not DEFAULT_FILE.exists():
        raise ConfigError(None, [NO_CONFIG])
    return DEFAULT_FILE


def load_settings(explicit: Path | None = None) -> tuple[Settings, Path]:
    """Read and validate the config; apply ``$CRM_SYNC_DATABASE_URL`` over the file."""
    path = find_config(explicit)
    settings = _anchor_sqlite(parse_settings(_read_toml(path), path), path.parent)
    override = os.environ.get(ENV_DATABASE_URL)
    if override:
        settings = settings.model_copy(update={"database": database_override(override)})
    return settings, path


def database_override(url: str) -> DatabaseConfig:
    """``$CRM_SYNC_DATABASE_URL`` checked as ``database.url`` is, its errors named after it."""
    try:
        return DatabaseConfig.model_validate({"url": url})
    except ValidationError as exc:
        problems = [f"${ENV_DATABASE_URL}: {_message(error)}" for error in exc.errors()]
        raise ConfigError(None, problems) from None


def _anchor_sqlite(settings: Settings, base: Path) -> Settings:
    """A relative SQLite path means next to the config file, not wherever the agent was started."""
    prefix = "sqlite:///"
    url = settings.database.url
    if not url.startswith(prefix) or url == prefix or url.startswith(prefix + "/"):
        return settings
    relative = url[len(prefix) :]
    if relative.startswith(":memory:") or Path(relative).is_absolute():
        return settings
    anchored = prefix + str((base / relative).resolve())
    return settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": anchored})}
    )


def parse_settings(
    data: Mapping[str, Any], path: Path | None, env: Mapping[str, str] | None = None
) -> Settings:
    """Validate already-parsed TOML, expanding ``${VAR}`` references first."""
    unresolved: list[Unresolved] = []
    expanded = _expand(data, os.environ if env is None else env, (), path, unresolved)
    context = {
        MIN_INTERVAL_CONTEXT: min_interval(),
        UNRESOLVED_CONTEXT: _by_connector(expanded, unresolved),
    }
    try:
        return Settings.model_validate(expanded, context=context)
    except ValidationError as exc:
        raise ConfigError(path, [_describe(error, unresolved) for error in exc.errors()]) from None


def min_interval() -> timedelta:
    """The shortest interval allowed: :data:`MIN_INTERVAL`, or ``$CRM_SYNC_MIN_INTERVAL``."""
    text = os.environ.get(ENV_MIN_INTERVAL, "").strip()
    if not text:
        return MIN_INTERVAL
    try:
        floor = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(None, [f"${ENV_MIN_INTERVAL}: {exc}"]) from None
    if floor <= timedelta(0):
        raise ConfigError(None, [f"${ENV_MIN_INTERVAL}: must be more than 0 (got {text!r})"])
    return floor


def resolve(config: ConnectorConfig, env: Mapping[str, str] | None = None) -> ConnectorConfig:
    """``config`` with the values left unresolved when the file was read expanded now.

    :class:`VariableUnset`, naming each key and variable, when one is still unset;
    :class:`ConnectorConfigError` when a value it expanded to is not one the key takes.
    """
    if not config.unresolved:
        return config
    environment = os.environ if env is None else env
    data = config.model_dump()
    problems: list[str] = []
    for value in config.unresolved:
        missing = [name for name in _ENV_REF.findall(value.text) if name not in environment]
        if missing:
            # not "password: ..." -- logs mask whatever follows that as a secret
            problems.append(
                f"{key_path(value.where)} uses ${{{missing[0]}}}, an environment variable "
                "not set where the agent runs"
            )
            continue
        _put(data, value.where[2:], _ENV_REF.sub(lambda m: environment[m.group(1)], value.text))
    if problems:
        raise VariableUnset(config.unresolved[0].file, problems)
    floor = {MIN_INTERVAL_CONTEXT: timedelta.resolution}  # its interval was checked on reading
    try:
        return type(config).model_validate(data, context=floor)
    except ValidationError as exc:
        file = config.unresolved[0].file
        where = config.unresolved[0].where[:2]
        problems = [f"{key_path(where + tuple(e['loc']))}: {_message(e)}" for e in exc.errors()]
        raise ConnectorConfigError(file, problems) from None


def _put(data: Any, where: tuple[str | int, ...], value: str) -> None:
    for part in where[:-1]:
        data = data[part]
    data[where[-1]] = value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (run `crm-sync init` to write one)"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None


def _expand(
    value: Any,
    env: Mapping[str, str],
    where: tuple[str | int, ...],
    path: Path | None,
    unresolved: list[Unresolved],
) -> Any:
    if isinstance(value, str):
        unset = tuple(dict.fromkeys(n for n in _ENV_REF.findall(value) if n not in env))
        if not unset:
            return _ENV_REF.sub(lambda match: env[match.group(1)], value)
        if len(where) > 2 and where[0] == "connectors" and isinstance(where[1], int):
            unresolved.append(Unresolved(where, value, unset, path))
            return value
        raise ConfigError(path, [f"{key_path(where)}: environment variable {unset[0]} is not set"])
    if isinstance(value, Mapping):
        return {k: _expand(v, env, (*where, k), path, unresolved) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, (*where, i), path, unresolved) for i, v in enumerate(value)]
    return value


def _by_connector(
    data: Mapping[str, Any], unresolved: list[Unresolved]
) -> dict[str, tuple[Unresolved, ...]]:
    """Connector name -> its unresolved values, for the schema to hand each connector its own."""
    tables = data.get("connectors")
    found: dict[str, tuple[Unresolved, ...]] = {}
    if not isinstance(tables, list):
        return found
    for index, table in enumerate(tables):
        name = table.get("name") if isinstance(table, Mapping) else None
        mine = tuple(u for u in unresolved if u.where[1] == index)
        if isinstance(name, str) and mine:
            found[name] = mine
    return found


def key_path(loc: tuple[str | int, ...]) -> str:
    """``("connectors", 1, "account")`` -> ``connectors[1].account``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _describe(error: Mapping[str, Any], unresolved: Sequence[Unresolved] = ()) -> str:
    # pydantic puts the discriminator's value into the location of a tagged union member
    loc = tuple(
        part
        for i, part in enumerate(error["loc"])
        if not (part in CONNECTOR_KINDS and i > 0 and isinstance(error["loc"][i - 1], int))
    )
    unset = next((u for u in unresolved if loc[: len(u.where)] == u.where), None)
    if unset is not None:
        return f"{key_path(loc)}: environment variable {unset.variables[0]} is not set"
    return f"{key_path(loc)}: {_message(error, loc)}"


def _message(error: Mapping[str, Any], loc: tuple[str | int, ...] | None = None) -> str:
    """What was wrong with one value, and the value unless its key may hold a secret."""
    loc = tuple(error["loc"]) if loc is None else loc
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown connector kind (expected one of: {', '.join(CONNECTOR_KINDS)})"
    if kind == "union_tag_not_found":
        return f"`kind` is missing (one of: {', '.join(CONNECTOR_KINDS)})"
    if kind in ("bool_type", "bool_parsing"):
        message = "must be true or false"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    shown = "input" in error and not isinstance(error["input"], dict | list)
    if shown and not (loc and loc[-1] in _NOT_REPEATED) and f": {error['input']!r}" not in message:
        message += f" (got {error['input']!r})"
    return message
