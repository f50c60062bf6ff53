"""The config file: loading order, ${VAR} expansion, durations, ranges and shapes, and errors
that name the file and the key."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pytest

from config import ConfigError, load_settings, parse_settings
from config.loader import NO_CONFIG, VariableUnset, resolve
from config.schema import ImapConnector, Settings, parse_duration, parse_since
from tests.support.cli import run_cli, run_in_process

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
        ({"agent": {"interval": "soon"}}, "agent.interval: not a duration: 'soon'"),
        ({"agent": {"log_internal": "maybe"}}, "agent.log_internal: must be true or false"),
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


def test_no_file_is_an_error_naming_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_SYNC_CONFIG", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert caught.value.problems == [NO_CONFIG]
    for place in ("--config", "$CRM_SYNC_CONFIG", "./crm-sync.toml", "`crm-sync init`"):
        assert place in NO_CONFIG


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


# -- ranges and shapes: each refused with exit status 2, naming the file and the key -----------

IMAP = (
    'name = "alice-imap"\nkind = "imap"\naccount = "alice@example.com"\nhost = "imap.example.com"\n'
)
ICS = 'name = "team"\nkind = "ics"\naccount = "alice@example.com"\npath = "team.ics"\n'
CALENDAR = 'name = "cal"\nkind = "google_calendar"\naccount = "alice@example.com"\n'


def _second_connector(body: str) -> str:
    """``body`` as the config's second connector, so the key path shows its index."""
    return f"[[connectors]]\n{ICS.replace('team', 'first')}\n[[connectors]]\n{body}"


RANGES = [
    (
        "agent-interval-negative",
        "[agent]\ninterval = -60\n",
        "agent.interval: must be at least 10s (got -60)",
    ),
    (
        "agent-interval-zero",
        "[agent]\ninterval = 0\n",
        "agent.interval: must be at least 10s (got 0)",
    ),
    (
        "agent-interval-too-short",
        '[agent]\ninterval = "5s"\n',
        "agent.interval: must be at least 10s",
    ),
    (
        "agent-interval-too-long",
        '[agent]\ninterval = "60d"\n',
        "agent.interval: must be at most 30d",
    ),
    ("agent-interval-infinite", "[agent]\ninterval = inf\n", "agent.interval: not a duration: inf"),
    (
        "agent-interval-not-a-number",
        "[agent]\ninterval = nan\n",
        "agent.interval: not a duration: nan",
    ),
    ("agent-interval-overflows", '[agent]\ninterval = "1e30w"\n', "agent.interval: not a duration"),
    (
        "connector-interval-negative",
        _second_connector(IMAP + "interval = -1\n"),
        "connectors[1].interval: must be at least 10s (got -1)",
    ),
    (
        "connector-interval-too-short",
        _second_connector(IMAP + 'interval = "500ms"\n'),
        "connectors[1].interval: must be at least 10s",
    ),
    (
        "ics-horizon-under-a-day",
        _second_connector(ICS + 'horizon = "12h"\n'),
        "connectors[1].horizon: must be from 1d to 3650d (got '12h')",
    ),
    (
        "calendar-horizon-negative",
        _second_connector(CALENDAR + "horizon = -86400\n"),
        "connectors[1].horizon: must be from 1d to 3650d",
    ),
    (
        "since-overflows",
        _second_connector(ICS + 'since = "9999999w"\n'),
        "connectors[1].since: not a date or an age",
    ),
    (
        "store-bodies-no",
        '[privacy]\nstore_bodies = "no"\n',
        "privacy.store_bodies: must be true or false (got 'no')",
    ),
    (
        "log-internal-one",
        "[agent]\nlog_internal = 1\n",
        "agent.log_internal: must be true or false (got 1)",
    ),
    (
        "propagate-deletes-yes",
        '[agent]\npropagate_deletes = "yes"\n',
        "agent.propagate_deletes: must be true or false (got 'yes')",
    ),
    (
        "connector-enabled-off",
        _second_connector(IMAP + 'enabled = "off"\n'),
        "connectors[1].enabled: must be true or false (got 'off')",
    ),
    (
        "imap-idle-zero",
        _second_connector(IMAP + "idle = 0\n"),
        "connectors[1].idle: must be true or false (got 0)",
    ),
    (
        "account-a-name",
        _second_connector(IMAP.replace("alice@example.com", "alice")),
        "connectors[1].account: not an email address: the mailbox's own, "
        "like name@example.com (got 'alice')",
    ),
    (
        "account-no-domain",
        _second_connector(ICS.replace("alice@example.com", "alice@")),
        "connectors[1].account: not an email address",
    ),
    (
        "account-two-ats",
        _second_connector(CALENDAR.replace("alice@", "alice@@")),
        "connectors[1].account: not an email address",
    ),
    (
        "account-with-a-space",
        _second_connector(IMAP.replace("alice@", "alice smith@")),
        "connectors[1].account: not an email address",
    ),
    (
        "imap-port-zero",
        _second_connector(IMAP + "port = 0\n"),
        "connectors[1].port: must be a port from 1 to 65535 (got 0)",
    ),
    (
        "imap-port-too-high",
        _second_connector(IMAP + "port = 65536\n"),
        "connectors[1].port: must be a port from 1 to 65535 (got 65536)",
    ),
    (
        "imap-port-a-word",
        _second_connector(IMAP + 'port = "imaps"\n'),
        "connectors[1].port: Input should be a valid integer (got 'imaps')",
    ),
    (
        "imap-port-a-flag",
        _second_connector(IMAP + "port = true\n"),
        "connectors[1].port: Input should be a valid integer (got True)",
    ),
    (
        "imap-host-empty",
        _second_connector(IMAP.replace('"imap.example.com"', '""')),
        "connectors[1].host: must be a host name or an IP address, without spaces (got '')",
    ),
    (
        "imap-host-with-a-space",
        _second_connector(IMAP.replace("imap.", "imap ")),
        "connectors[1].host: must be a host name or an IP address",
    ),
    (
        "planning-processes-negative",
        "[agent]\nplanning_processes = -1\n",
        "agent.planning_processes: Input should be greater than or equal to 0 (got -1)",
    ),
    (
        "limit-negative",
        "[limits]\ncontact_recipients = -1\n",
        "limits.contact_recipients: Input should be greater than or equal to 0 (got -1)",
    ),
    (
        "database-mysql",
        '[database]\nurl = "mysql://crm:s3cret@db.example/crm"\n',
        "database.url: unsupported database 'mysql'; supported: sqlite:///PATH and "
        "postgresql+psycopg://USER@HOST/DB, also spelled postgresql:// or postgres://",
    ),
    (
        "database-other-driver",
        '[database]\nurl = "postgresql+psycopg2://crm:s3cret@db/crm"\n',
        "database.url: unsupported database 'postgresql+psycopg2'",
    ),
    (
        "database-not-a-url",
        '[database]\nurl = "crm.db"\n',
        "database.url: not a database URL; supported:",
    ),
    (
        "unset-variable-outside-a-connector",
        '[database]\nurl = "${CRM_TEST_UNSET}"\n',
        "database.url: environment variable CRM_TEST_UNSET is not set",
    ),
    (
        "unset-variable-in-a-checked-connector-key",
        _second_connector(IMAP + 'port = "${CRM_TEST_UNSET}"\n'),
        "connectors[1].port: environment variable CRM_TEST_UNSET is not set",
    ),
    (
        "filters-threshold-not-a-number",
        '[filters]\nspam_score_threshold = "high"\n',
        "filters.spam_score_threshold: must be a number, like 5.0 (got 'high')",
    ),
    (
        "filters-threshold-a-flag",
        "[filters]\nspam_score_threshold = true\n",
        "filters.spam_score_threshold: must be a number, like 5.0 (got True)",
    ),
    (
        "filters-threshold-out-of-range",
        "[filters]\nspam_score_threshold = 1e9\n",
        "filters.spam_score_threshold: Input should be less than or equal to 1000",
    ),
    (
        "filters-suspect-above-spam",
        "[filters]\nspam_score_threshold = 4.0\nsuspect_score_threshold = 6\n",
        "filters: suspect_score_threshold must not be above spam_score_threshold (6 > 4)",
    ),
    (
        "filters-flag-not-a-flag",
        '[filters]\nspam_headers = "yes"\n',
        "filters.spam_headers: must be true or false (got 'yes')",
    ),
    ("filters-unknown-key", "[filters]\nspam = false\n", "filters.spam: unknown key"),
    (
        "web-no-request-at-once",
        "[web]\nconcurrent_requests = 0\n",
        "web.concurrent_requests: Input should be greater than or equal to 1",
    ),
    (
        "web-too-many-requests-at-once",
        "[web]\nconcurrent_requests = 65\n",
        "web.concurrent_requests: Input should be less than or equal to 64",
    ),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in RANGES], ids=[c[0] for c in RANGES])
def test_a_value_out_of_range_or_shape_exits_2_naming_file_and_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    body: str,
    expected: str,
) -> None:
    config = tmp_path / "crm-sync.toml"
    config.write_text(body)
    ran = run_in_process("status", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert ran.code == 2, ran.stderr
    first, *problems = ran.stderr.splitlines()
    assert first == "config error: crm-sync.toml"
    assert [p for p in problems if p.startswith(f"  {expected}")], problems
    assert "Traceback" not in ran.stderr and "s3cret" not in ran.stderr


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ('[agent]\ninterval = "10s"\n', lambda s: s.agent.interval == timedelta(seconds=10)),
        ('[agent]\ninterval = "30d"\n', lambda s: s.agent.interval == timedelta(days=30)),
        (_second_connector(ICS + 'horizon = "1d"\n'), lambda s: s.connectors[1].horizon.days == 1),
        (
            '[database]\nurl = "postgres://crm@db/crm"\n',
            lambda s: s.database.url == "postgresql+psycopg://crm@db/crm",
        ),
        (
            '[database]\nurl = "postgresql://crm@db/crm"\n',
            lambda s: s.database.url == "postgresql+psycopg://crm@db/crm",
        ),
        (
            '[database]\nurl = "postgresql+psycopg://crm@db/crm"\n',
            lambda s: s.database.url == "postgresql+psycopg://crm@db/crm",
        ),
        (
            _second_connector(IMAP + 'port = "${CRM_TEST_PORT}"\nidle = "${CRM_TEST_IDLE}"\n'),
            lambda s: (s.connectors[1].port, s.connectors[1].idle) == (993, True),
        ),
        (
            _second_connector(IMAP.replace("alice@example.com", "jörg.o'neil+crm@müller.example")),
            lambda s: s.connectors[1].account == "jörg.o'neil+crm@müller.example",
        ),
    ],
    ids=[
        "shortest-interval",
        "longest-interval",
        "shortest-horizon",
        "postgres-scheme",
        "postgresql-scheme",
        "psycopg-scheme",
        "flag-and-port-from-variables",
        "international-address",
    ],
)
def test_values_in_range_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, check: Callable[[Settings], bool]
) -> None:
    config = tmp_path / "crm-sync.toml"
    config.write_text(body)
    monkeypatch.setenv("CRM_TEST_PORT", "993")
    monkeypatch.setenv("CRM_TEST_IDLE", "true")
    monkeypatch.delenv("CRM_SYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_SYNC_MIN_INTERVAL", raising=False)
    assert check(load_settings(config)[0])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mysql://crm:s3cret@db/crm",
            "$CRM_SYNC_DATABASE_URL: unsupported database 'mysql'; supported:",
        ),
        (
            "sqlite+pysqlite:///crm.db",
            "$CRM_SYNC_DATABASE_URL: unsupported database 'sqlite+pysqlite'",
        ),
        ("db.example/crm", "$CRM_SYNC_DATABASE_URL: not a database URL"),
    ],
    ids=["mysql", "other-sqlite-driver", "not-a-url"],
)
def test_the_database_url_variable_is_checked_and_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
    expected: str,
) -> None:
    (tmp_path / "crm-sync.toml").write_text("[agent]\n")
    ran = run_in_process(
        "status",
        cwd=tmp_path,
        monkeypatch=monkeypatch,
        capsys=capsys,
        env={"CRM_SYNC_DATABASE_URL": url},
    )
    assert ran.code == 2
    first, problem = ran.stderr.splitlines()
    assert first == "config error: configuration"
    assert problem.startswith(f"  {expected}")
    assert "s3cret" not in ran.stderr


def test_mysql_through_the_real_entry_point_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "crm-sync.toml").write_text('[database]\nurl = "mysql://crm:s3cret@db/crm"\n')
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "config error: crm-sync.toml",
        "  database.url: unsupported database 'mysql'; supported: sqlite:///PATH and "
        "postgresql+psycopg://USER@HOST/DB, also spelled postgresql:// or postgres://",
    ]


def test_a_value_that_may_hold_a_secret_is_never_repeated() -> None:
    data = {
        "connectors": [
            {
                "name": "a",
                "kind": "imap",
                "account": "a@example.com",
                "host": "h.example",
                "password": 123456,
            }
        ]
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, Path("crm-sync.toml"), env={})
    assert caught.value.problems == ["connectors[0].password: Input should be a valid string"]


def test_the_interval_floor_may_be_lowered_for_tests_but_never_to_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = {"agent": {"interval": "0.2s"}}
    monkeypatch.setenv("CRM_SYNC_MIN_INTERVAL", "0.1s")
    assert parse_settings(fast, None).agent.interval == timedelta(seconds=0.2)
    with pytest.raises(ConfigError, match=r"agent\.interval: must be at least 0\.1s"):
        parse_settings({"agent": {"interval": "0.05s"}}, None)
    for floor in ("0s", "soon"):
        monkeypatch.setenv("CRM_SYNC_MIN_INTERVAL", floor)
        with pytest.raises(ConfigError, match=r"\$CRM_SYNC_MIN_INTERVAL: "):
            parse_settings(fast, None)


# -- ${VAR} in a connector: resolved when that connector is built ----------------------------


def test_an_unset_variable_in_a_connector_waits_for_the_connector() -> None:
    data = {
        "connectors": [
            {"name": "ics", "kind": "ics", "account": "a@example.com", "path": "${MAIL}/t.ics"},
            {
                "name": "imap",
                "kind": "imap",
                "account": "b@example.com",
                "host": "h.example",
                "password": "${CRM_TEST_PASSWORD}",
                "folders": ["INBOX", "${CRM_TEST_FOLDER}"],
            },
        ]
    }
    settings = parse_settings(data, Path("/etc/crm-sync.toml"), env={"MAIL": "/srv"})
    ics, imap = settings.connectors
    assert resolve(ics) is ics and str(ics.path) == "/srv/t.ics"  # type: ignore[union-attr]
    assert [u.variables for u in imap.unresolved] == [("CRM_TEST_PASSWORD",), ("CRM_TEST_FOLDER",)]

    with pytest.raises(VariableUnset) as caught:
        resolve(imap, {"CRM_TEST_FOLDER": "Sent"})
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == (
        "/etc/crm-sync.toml: connectors[1].password uses ${CRM_TEST_PASSWORD}, an environment "
        "variable not set where the agent runs"
    )

    built = resolve(imap, {"CRM_TEST_PASSWORD": "s3cret", "CRM_TEST_FOLDER": "Sent"})
    assert isinstance(built, ImapConnector)
    assert (built.password, built.folders, built.unresolved) == ("s3cret", ["INBOX", "Sent"], ())
    assert imap.password == "${CRM_TEST_PASSWORD}", "the settings keep the value as written"


def test_the_filters_table_of_the_example_loads_uncommented() -> None:
    """The [filters] examples, uncommented, are the defaults: the template shows them."""
    text = resources.files("config").joinpath("example.toml").read_text("utf-8")
    start = text.index("# [filters]")
    block = text[start : text.index("\n\n", start)]
    uncommented = "\n".join(line.removeprefix("# ") for line in block.splitlines())
    settings = parse_settings(tomllib.loads(uncommented), Path("example.toml"))
    assert settings.filters == parse_settings({}, None).filters
    assert settings.filters.spam_score_threshold == 5.0


def test_filters_turned_off_and_thresholds_moved_load() -> None:
    body = {
        "filters": {
            "spam_headers": False,
            "spam_score_threshold": 8,
            "suspect_score_threshold": -2.5,
            "sender_authentication": False,
            "junk_folders": False,
        }
    }
    filters = parse_settings(body, None).filters
    assert (filters.spam_score_threshold, filters.suspect_score_threshold) == (8.0, -2.5)
    assert not (filters.spam_headers or filters.sender_authentication or filters.junk_folders)
