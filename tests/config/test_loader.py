"""The config file: loading order, ${VAR} expansion, durations, and errors that name the key."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pytest

from config import ConfigError, load_settings, parse_settings
from config.schema import parse_duration, parse_since
from tests.support.cli import run_cli

MBOX = {"name": "takeout", "kind": "mbox", "account": "a@example.com", "path": "/x.mbox"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("90s", 90), ("1.5h", 5400), ("7d", 604800), ("2w", 1209600), (45, 45)],
    ids=["minutes", "seconds", "fractional-hours", "days", "weeks", "bare-number"],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "5 parsecs", "", "-5m"], ids=str)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_since_takes_dates_and_ages() -> None:
    now = datetime(2026, 1, 31, tzinfo=timezone.utc)
    assert parse_since("2024-01-01") == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert parse_since("90d", now=now) == now - timedelta(days=90)
    with pytest.raises(ValueError, match="not a date or an age"):
        parse_since("last spring")


def test_the_shipped_example_loads_unchanged() -> None:
    text = resources.files("config").joinpath("example.toml").read_text("utf-8")
    settings = parse_settings(tomllib.loads(text), Path("example.toml"))
    assert settings.agent.interval == timedelta(minutes=5)
    assert settings.agent.auto_create_contacts == "sent"


def test_env_references_are_expanded() -> None:
    data = {"connectors": [{**MBOX, "path": "${MAIL_DIR}/all.mbox"}]}
    settings = parse_settings(data, None, env={"MAIL_DIR": "/srv/mail"})
    assert str(settings.connectors[0].path) == "/srv/mail/all.mbox"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"agent": {"intervall": "5m"}}, "agent.intervall: unknown key"),
        ({"agent": {"interval": "soon"}}, "agent.interval: Value error, not a duration"),
        (
            {"agent": {"log_internal": "maybe"}},
            "agent.log_internal: Input should be a valid boolean",
        ),
        (
            {"connectors": [MBOX, {"name": "g", "kind": "gmail"}]},
            "connectors[1].account: required key is missing",
        ),
        ({"connectors": [{**MBOX, "colour": "red"}]}, "connectors[0].colour: unknown key"),
        ({"connectors": [{"name": "x", "kind": "pop3"}]}, "connectors[0]: unknown connector kind"),
        ({"connectors": [MBOX, MBOX]}, "two connectors are named 'takeout'"),
        ({"database": {"url": "${NOT_SET_ANYWHERE}"}}, "database.url: environment variable"),
    ],
    ids=[
        "unknown-key",
        "bad-duration",
        "wrong-type",
        "missing-account",
        "unknown-connector-key",
        "unknown-kind",
        "duplicate-name",
        "missing-env",
    ],
)
def test_errors_name_the_key(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, Path("/etc/crm-sync.toml"), env={})
    assert expected in str(caught.value)
    assert str(caught.value).startswith("/etc/crm-sync.toml: ")


def test_loading_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[database]\nurl = "sqlite:///explicit.db"\n')
    from_env = tmp_path / "env.toml"
    from_env.write_text('[database]\nurl = "sqlite:///env.db"\n')
    (tmp_path / "crm-sync.toml").write_text('[database]\nurl = "sqlite:///cwd.db"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_SYNC_DATABASE_URL", raising=False)

    monkeypatch.delenv("CRM_SYNC_CONFIG", raising=False)
    assert load_settings(None)[1] == Path("crm-sync.toml")
    monkeypatch.setenv("CRM_SYNC_CONFIG", str(from_env))
    assert load_settings(None)[1] == from_env
    settings, path = load_settings(explicit)
    assert path == explicit
    # a relative SQLite path lives next to its config file
    assert settings.database.url == f"sqlite:///{tmp_path / 'explicit.db'}"

    monkeypatch.setenv("CRM_SYNC_DATABASE_URL", "postgresql+psycopg://db.internal/crm")
    assert load_settings(explicit)[0].database.url == "postgresql+psycopg://db.internal/crm"


def test_no_file_means_built_in_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_SYNC_CONFIG", raising=False)
    monkeypatch.delenv("CRM_SYNC_DATABASE_URL", raising=False)
    settings, path = load_settings(None)
    assert path is None
    assert settings.connectors == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[agent]\ncolour = 'red'\n", "agent.colour: unknown key"),
        ("[agent]\ninterval = true\n", "agent.interval"),
        (
            "[[connectors]]\nname = 'g'\nkind = 'gmail'\n",
            "connectors[0].account: required key is missing",
        ),
        ("[agent\n", "not valid TOML"),
    ],
    ids=["unknown-key", "wrong-type", "missing-account", "broken-toml"],
)
def test_cli_exits_2_and_names_file_and_key(tmp_path: Path, body: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(body)
    result = run_cli("--config", str(config), "status", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert str(config) in result.stderr
    assert expected in result.stderr


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.toml"), "status", cwd=tmp_path)
    assert result.returncode == 2
    assert "file not found" in result.stderr
