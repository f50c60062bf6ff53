"""Finding, reading and validating the config file.

Errors name the file, the key path as a user would write it
(``connectors[1].account``) and what was wrong, because an admin fixing a
config should never have to guess which line a message is about.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.schema import CONNECTOR_KINDS, Settings

ENV_CONFIG = "CRM_SYNC_CONFIG"
ENV_DATABASE_URL = "CRM_SYNC_DATABASE_URL"
DEFAULT_FILE = Path("crm-sync.toml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """A config problem an admin must fix; the CLI prints it and exits with status 2."""

    def __init__(self, path: Path | None, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        where = str(path) if path else "configuration"
        super().__init__(f"{where}: " + "; ".join(problems))


def find_config(explicit: Path | None) -> Path | None:
    """The file to read: ``--config``, then ``$CRM_SYNC_CONFIG``, then ``./crm-sync.toml``.

    None when no file is named and the default does not exist: the agent then
    runs on built-in defaults (an embedded SQLite database, no connectors).
    """
    if explicit is not None:
        return explicit
    from_env = os.environ.get(ENV_CONFIG)
    if from_env:
        return Path(from_env)
    return DEFAULT_FILE if DEFAULT_FILE.exists() else None


def load_settings(explicit: Path | None = None) -> tuple[Settings, Path | None]:
    """Read and validate the config; apply ``$CRM_SYNC_DATABASE_URL`` over the file."""
    path = find_config(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
    settings = parse_settings(data, path)
    if path is not None:
        settings = _anchor_sqlite(settings, path.parent)
    override = os.environ.get(ENV_DATABASE_URL)
    if override:
        settings = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": override})}
        )
    return settings, path


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
    expanded = _expand(data, os.environ if env is None else env, (), path)
    try:
        return Settings.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(path, [_describe(error) for error in exc.errors()]) from None


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
    value: Any, env: Mapping[str, str], where: tuple[str | int, ...], path: Path | None
) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    path, [f"{key_path(where)}: environment variable {name} is not set"]
                )
            return env[name]

        return _ENV_REF.sub(substitute, value)
    if isinstance(value, Mapping):
        return {k: _expand(v, env, (*where, k), path) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, (*where, i), path) for i, v in enumerate(value)]
    return value


def key_path(loc: tuple[str | int, ...]) -> str:
    """``("connectors", 1, "account")`` -> ``connectors[1].account``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _describe(error: Mapping[str, Any]) -> str:
    # pydantic puts the discriminator's value into the location of a tagged union member
    loc = tuple(
        part
        for i, part in enumerate(error["loc"])
        if not (part in CONNECTOR_KINDS and i > 0 and isinstance(error["loc"][i - 1], int))
    )
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_invalid":
        message = f"unknown connector kind (expected one of: {', '.join(CONNECTOR_KINDS)})"
    elif kind == "union_tag_not_found":
        message = f"`kind` is missing (one of: {', '.join(CONNECTOR_KINDS)})"
    else:
        message = str(error["msg"])
        if "input" in error and not isinstance(error["input"], dict | list):
            message += f" (got {error['input']!r})"
    return f"{key_path(loc)}: {message}"
