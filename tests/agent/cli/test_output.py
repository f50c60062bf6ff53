"""Text from mail and calendars cannot steer the terminal that shows it.

Subjects, snippets, names and error texts are written by strangers. Whatever
they carry (escape sequences, C0/C1 controls, bidi overrides, Rich markup)
reaches a person's terminal, a pager or a log only as inert text, while
``--json`` keeps every value exact for programs.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agent.runtime import logs
from agent.runtime.inert_text import _scrubbed, json_text, plain
from storage.db import session_factory
from storage.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
)
from tests.support.cli import run_cli, write_config

HOSTILE = [
    pytest.param(
        "\x1b]8;;https://evil.example\x1b\\click here\x1b]8;;\x1b\\", "click here", id="osc8-link"
    ),
    pytest.param("\x1b]52;c;ZXZpbA==\x07after", "after", id="osc52-clipboard"),
    pytest.param("\x1b[2Jafter", "after", id="csi-clear-screen"),
    pytest.param("up\x1b[1Adown", "updown", id="csi-cursor-up"),
    pytest.param("\x1b]0;pwned\x07title", "title", id="osc-window-title"),
    pytest.param("\x9b2Jafter", "after", id="c1-csi-clear"),
    pytest.param("\x9d0;pwned\x9cafter", "after", id="c1-osc-title"),
    pytest.param("\x9d8;;https://evil.example\x07click", "click", id="c1-osc8-bel"),
    pytest.param("\x1bPq#0;2;0;0;0\x1b\\after", "after", id="dcs-sixel"),
    pytest.param("\x1b_Gf=100;AAAA\x1b\\after", "after", id="apc-kitty"),
    pytest.param("\x1bcreset", "reset", id="esc-ris"),
    pytest.param("\x1b7saved\x1b8", "saved", id="esc-save-restore"),
    pytest.param("\x1b(0lqk", "lqk", id="esc-charset"),
    pytest.param("before\x1b]0;never ends", "before", id="osc-unterminated"),
    pytest.param("ding\x07dong", "dingdong", id="bel"),
    pytest.param("abc\x08\x08\x08xyz", "abcxyz", id="backspace-overwrite"),
    pytest.param("safe\rEVIL", "safeEVIL", id="cr-overwrite"),
    pytest.param("nul\x00byte", "nulbyte", id="nul"),
    pytest.param("del\x7fete", "delete", id="del"),
    pytest.param("next\x85line", "nextline", id="c1-nel"),
    pytest.param("invoice_\u202egnp.exe", "invoice_gnp.exe", id="bidi-override"),
    pytest.param(
        "\u2066isolated\u2069 \u202aembedded\u202c", "isolated embedded", id="bidi-isolate"
    ),
    pytest.param("lone\x1b", "lone", id="lone-esc"),
    pytest.param("\x1b", "", id="only-esc"),
    pytest.param("a\tb\nc\r\nd", "a b c d", id="tab-newline"),
    pytest.param("line\u2028break", "line break", id="line-separator"),
    pytest.param(
        "[link=https://evil.example]click[/link]",
        "[link=https://evil.example]click[/link]",
        id="rich-link-markup",
    ),
    pytest.param("[bold red]x[/]", "[bold red]x[/]", id="rich-style-markup"),
    pytest.param("[/]", "[/]", id="rich-close-alone"),
    pytest.param(
        "Zoë Ångström, 日本, مرحبا 🙂", "Zoë Ångström, 日本, مرحبا 🙂", id="readable-text"
    ),
]

NAME = "Ann \x1b]8;;https://evil.example\x1b\\Lee\x1b]8;;\x1b\\\u202e [link=https://evil.example]click[/link]"
COMPANY = "Acme\x1b[2J\x1b[1A\x9b2J [bold red]x[/]"
TITLE = "CTO\x1b]0;pwned\x07\x07 abc\x08\x08\x08xyz"
ADDRESS = "1 Main St\x1b]52;c;ZXZpbA==\x07\nSpringfield\x9d0;pwned\x9c"
SUBJECT = "Pricing \x1b]0;pwned\x07safe\rEVIL [link=https://evil.example]click[/link]"
SUMMARY = "nul\x00 del\x7f bidi\u202eexe.pdf \x9d8;;https://evil.example\x07x [/] lone\x1b"
HOSTILE_VALUES = (NAME, COMPANY, TITLE, ADDRESS, SUBJECT, SUMMARY)

_SGR = re.compile(r"\x1b\[[0-9;]*m")
_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _unsafe(text: str) -> list[str]:
    """Every character a terminal would obey, or reorder text by, except ``\\n``."""
    return _UNSAFE.findall(text)


@pytest.mark.parametrize(("text", "expected"), HOSTILE)
def test_plain_leaves_only_what_a_reader_sees(text: str, expected: str) -> None:
    assert plain(text) == expected
    assert _unsafe(plain(text, multiline=True)) == []


def test_plain_passes_text_as_it_is_only_when_no_character_would_change() -> None:
    """The quick path returns text after one scan; the full one must agree on every
    character of the Basic Multilingual Plane, alone and between letters."""
    for code in range(0x10000):
        for text in (chr(code), f"a{chr(code)}b", f"{chr(code)}[31m"):
            for multiline in (False, True):
                assert plain(text, multiline=multiline) == _scrubbed(text, multiline), hex(code)


def test_plain_keeps_lines_only_when_asked() -> None:
    assert plain("one\ttwo\nthree\r\nfour") == "one two three four"
    assert plain("one\ttwo\nthree\r\nfour", multiline=True) == "one two\nthree\nfour"


@pytest.mark.parametrize(("text", "expected"), HOSTILE)
def test_json_text_escapes_what_a_terminal_obeys_and_round_trips(text: str, expected: str) -> None:
    value = {"subject": text, "nested": [text]}
    encoded = json_text(value, indent=2)
    assert _unsafe(encoded.replace("\n", "")) == []
    assert json.loads(encoded) == value


def test_json_text_keeps_letters_readable() -> None:
    assert json_text("Zoë 日本 \x9b \u202e \x7f") == '"Zoë 日本 \\u009b \\u202e \\u007f"'


@pytest.fixture
def hostile_db(sqlite_engine: Engine, sqlite_url: str) -> str:
    """A contact whose every text came from a hostile mailbox."""
    sessions = session_factory(sqlite_engine)
    with sessions() as session, session.begin():
        company = Company(name=COMPANY, domains=[CompanyDomain(domain="acme.example")])
        ann = Contact(display_name=NAME, title=TITLE, address=ADDRESS, company=company)
        ann.emails.append(ContactEmail(email="ann@acme.example"))
        session.add(ann)
        session.flush()
        interaction = Interaction(
            kind="email",
            dedupe_key="hostile@acme.example",
            occurred_at=datetime(2026, 3, 3, tzinfo=timezone.utc),
            subject=SUBJECT,
            summary=SUMMARY,
            direction="inbound",
        )
        interaction.participants.append(
            InteractionParticipant(contact_id=ann.id, email="ann@acme.example", role="from")
        )
        session.add(interaction)
        ann.last_contacted_at = datetime(2026, 3, 3, tzinfo=timezone.utc)
    return sqlite_url


@pytest.fixture(autouse=True)
def _config(tmp_path: Path) -> None:
    """Every command needs a config file; the database comes from $CRM_SYNC_DATABASE_URL."""
    write_config(tmp_path)


def _env(db_url: str, **extra: str) -> dict[str, str]:
    return {"CRM_SYNC_DATABASE_URL": db_url, "COLUMNS": "1000", **extra}


def _commands() -> Iterator[tuple[str, ...]]:
    yield ("contacts", "show", "ann@acme.example")
    yield ("contacts", "list")
    yield ("companies", "list")


@pytest.mark.parametrize("args", list(_commands()), ids=" ".join)
def test_piped_output_is_plain_and_shows_markup_literally(
    hostile_db: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = run_cli(*args, cwd=tmp_path, env=_env(hostile_db))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert _unsafe(result.stdout) == [] and _unsafe(result.stderr) == []
    if args[0] == "contacts":
        assert "[link=https://evil.example]click[/link]" in result.stdout
    assert "[bold red]x[/]" in result.stdout


def test_contacts_show_prints_every_hostile_field_as_inert_text(
    hostile_db: str, tmp_path: Path
) -> None:
    shown = run_cli("contacts", "show", "ann@acme.example", cwd=tmp_path, env=_env(hostile_db))
    lines = shown.stdout.splitlines()
    assert lines[0] == "Ann Lee [link=https://evil.example]click[/link]  ann@acme.example"
    assert "  company: Acme [bold red]x[/]" in lines
    assert "  title: CTO abcxyz" in lines
    assert "  address: 1 Main St" in lines and "           Springfield" in lines
    assert "Pricing safeEVIL [link=https://evil.example]click[/link]" in shown.stdout
    assert "nul del bidiexe.pdf x [/] lone" in shown.stdout


@pytest.mark.parametrize("args", list(_commands()), ids=" ".join)
def test_a_terminal_gets_only_the_styles_rich_emits(
    hostile_db: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    env = _env(hostile_db, FORCE_COLOR="1", TERM="xterm-256color", NO_COLOR="")
    result = run_cli(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert _SGR.search(result.stdout), "rich did not style the output: no terminal was forced"
    unstyled = _SGR.sub("", result.stdout)
    assert "\x1b" not in unstyled and "\x1b]8" not in result.stdout
    assert _unsafe(unstyled) == [] and _unsafe(result.stderr) == []
    assert "[bold red]x[/]" in unstyled


def test_json_output_round_trips_every_value_and_escapes_what_a_terminal_obeys(
    hostile_db: str, tmp_path: Path
) -> None:
    env = _env(hostile_db)
    shown = run_cli("contacts", "show", "ann@acme.example", "--json", cwd=tmp_path, env=env)
    listed = run_cli("contacts", "list", "--json", cwd=tmp_path, env=env)
    for result in (shown, listed):
        assert result.returncode == 0, result.stderr
        assert _unsafe(result.stdout.replace("\n", "")) == []
    record = json.loads(shown.stdout)
    assert (record["name"], record["company"], record["title"], record["address"]) == (
        NAME,
        COMPANY,
        TITLE,
        ADDRESS,
    )
    stored = SUMMARY.replace("\x00", "")  # no database stores NUL (storage.models)
    assert [(i["subject"], i["summary"]) for i in record["timeline"]] == [(SUBJECT, stored)]
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["company"], row["title"]) == (NAME, COMPANY, TITLE)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield io.StringIO()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_logged_subject_comes_out_plain(log_stream: io.StringIO) -> None:
    logs.configure(level=logging.INFO, stream=log_stream)
    logger = logging.getLogger("crm-sync-test")
    logger.warning("skipped %s: %s", SUBJECT, ValueError(SUMMARY + "\nforged line"))
    try:
        raise RuntimeError(f"parse failed on {SUBJECT}\n{COMPANY}")
    except RuntimeError:
        logger.exception("quarantined %r", NAME)
    text = log_stream.getvalue()
    assert "\x1b" not in text and _unsafe(text) == []
    first, second, *traceback = text.splitlines()
    assert first.endswith(
        "skipped Pricing safeEVIL [link=https://evil.example]click[/link]: "
        "nul del bidiexe.pdf x [/] lone forged line"
    )
    assert "quarantined" in second
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-2:] == [
        "RuntimeError: parse failed on Pricing safeEVIL [link=https://evil.example]click[/link]",
        "Acme [bold red]x[/]",
    ]


def test_json_log_lines_escape_what_a_terminal_obeys(log_stream: io.StringIO) -> None:
    logs.configure(json=True, level=logging.INFO, stream=log_stream)
    logging.getLogger("crm-sync-\u202etest\x9b").warning("skipped %s", SUBJECT)
    line = log_stream.getvalue()
    assert _unsafe(line.rstrip("\n")) == []
    entry = json.loads(line)
    assert entry["logger"] == "crm-sync-\u202etest\x9b"
    assert entry["message"] == "skipped Pricing safeEVIL [link=https://evil.example]click[/link]"


def test_import_of_a_csv_with_a_megabyte_cell_is_a_usage_error(
    sqlite_engine: Engine, sqlite_url: str, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "email,title\nann@acme.example,CTO\nbob@acme.example," + "x" * 1_000_000 + "\n",
        encoding="utf-8",
    )
    result = run_cli("contacts", "import", str(people), cwd=tmp_path, env=_env(sqlite_url))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error == (
        f"Error: {people}, line 3: a cell is longer than 131072 characters, "
        "the most a cell may hold"
    )
    assert (
        "ann@acme.example"
        not in run_cli("contacts", "list", cwd=tmp_path, env=_env(sqlite_url)).stdout
    )


def test_import_names_a_hostile_column_plainly(sqlite_url: str, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("email,ti\x1b]0;pwned\x07tle\u202e\nann@acme.example,CTO\n", encoding="utf-8")
    result = run_cli("contacts", "import", str(people), cwd=tmp_path, env=_env(sqlite_url))
    assert result.returncode == 2
    assert _unsafe(result.stderr) == []
    assert f"Error: {people}: unknown columns: title (settable:" in result.stderr
