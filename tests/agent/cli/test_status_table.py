"""``status`` at any width: names whole, the quarantine count shown, errors and fixes in full.

The table's columns are chosen for the width (:mod:`agent.cli.status_table`); the
last error and the fix are whole lines under it, whatever the width.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from agent.cli.output import human
from agent.cli.status_table import ESSENTIAL, choose, print_status
from storage.sync_state import ConnectorHealth, Counters, LastRun
from tests.support.cli import run_cli, upgrade_database, write_config
from tests.support.mailbuilder import message, write_mbox

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
ERROR = (
    "imap.example.net said: \x1b[31m[red]550 mailbox unavailable[/red]\x07 "
    + "and a long explanation that no table cell could hold without cutting it " * 2
).strip()
SHOWN_ERROR = (
    "imap.example.net said: [red]550 mailbox unavailable[/red] "
    + "and a long explanation that no table cell could hold without cutting it " * 2
).strip()
"""``ERROR`` as it is printed: the escape sequence and the bell gone, the markup literal."""
FIX = "fix the error shown, then run `crm-sync sync --connector import-archive-2019` to retry now"
AUTH_FIX = (
    "correct the password (or its ${VARIABLE}) in the config, "
    "then run `crm-sync connectors resume carol-imap`"
)

ROWS = [
    ConnectorHealth(
        "alice-gmail",
        "gmail",
        "ok",
        last_success=NOW - timedelta(minutes=1),
        lag=timedelta(minutes=1),
        counters=Counters(items=1234, last_run=LastRun(quota_units={"messages.get": 250})),
    ),
    ConnectorHealth(
        "import-archive-2019",
        "mbox",
        "failing",
        last_success=NOW - timedelta(days=3),
        lag=timedelta(days=3),
        last_error=ERROR,
        fix=FIX,
        counters=Counters(items=80),
    ),
    ConnectorHealth(
        "carol-imap",
        "imap",
        "needs_auth",
        last_error="LOGIN failed",
        fix=AUTH_FIX,
        counters=Counters(items=7, quarantined=3),
    ),
]
QUARANTINED = {"alice-gmail": "0", "import-archive-2019": "0", "carol-imap": "3"}
WITHOUT_KIND = tuple(c for c in ESSENTIAL if c != "kind")
LEAST = tuple(c for c in WITHOUT_KIND if c != "lag")


def _shown(width: int, rows: list[ConnectorHealth] = ROWS) -> list[str]:
    buffer = io.StringIO()
    print_status(
        rows,
        title="crm-sync — sqlite:///crm.db",
        out=Console(file=buffer, width=width, color_system=None),
    )
    return buffer.getvalue().splitlines()


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (60, None),
        (80, (False, list(ESSENTIAL))),
        (120, (True, [*ESSENTIAL, "quota units"])),
        (200, (True, [*ESSENTIAL, "quota units"])),
    ],
)
def test_the_columns_chosen_for_a_width(
    width: int, expected: tuple[bool, list[str]] | None
) -> None:
    """At 80 the time of day goes before any column; quota units only where they fit."""
    assert choose(ROWS, width) == expected


def test_narrower_the_time_goes_then_kind_then_lag() -> None:
    short = [
        ConnectorHealth(
            "ann-mbox", "mbox", "ok", last_success=NOW, lag=timedelta(0), counters=Counters()
        )
    ]
    assert choose(short, 65) == (True, list(ESSENTIAL))
    assert choose(short, 64) == (False, list(ESSENTIAL))
    assert choose(short, 60) == (False, list(WITHOUT_KIND))
    assert choose(short, 54) == (False, list(LEAST))
    assert choose(short, 49) is None


def test_without_quota_units_anywhere_there_is_no_such_column() -> None:
    rows = ROWS[1:]
    assert choose(rows, 200) == (True, list(ESSENTIAL))
    assert not any("quota units" in line for line in _shown(200, rows))


def _cell(header: str, row: str, column: str) -> str:
    """The cell of ``column`` in ``row``: right-aligned under its header, it ends where it ends."""
    end = header.index(column) + len(column)
    return row[:end].split()[-1]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_a_table_that_fits_with_names_whole_and_counts_shown(width: int) -> None:
    lines = _shown(width)
    header = lines[1]
    table = lines[1 : lines.index("")]
    assert header.split()[:1] == ["connector"]
    assert all(len(line) <= width for line in table), table
    rows = {line.split()[0]: line for line in table[1:]}
    assert sorted(rows) == sorted(QUARANTINED)
    assert {name: _cell(header, row, "quarantined") for name, row in rows.items()} == QUARANTINED
    last_success = human(ROWS[0].last_success)
    assert (last_success in rows["alice-gmail"]) == (width > 80)
    assert last_success[:10] in rows["alice-gmail"]
    if width > 80:
        assert _cell(header, rows["alice-gmail"], "quota units") == "250"


def test_too_narrow_for_a_table_each_connector_gets_whole_lines() -> None:
    lines = _shown(60)
    assert lines[1:7] == [
        "alice-gmail  ok",
        f"    gmail, last success {human(ROWS[0].last_success)[:10]}, lag 1m, items 1234, "
        "quarantined 0, quota units 250",
        "import-archive-2019  failing",
        f"    mbox, last success {human(ROWS[1].last_success)[:10]}, lag 3d, items 80, "
        "quarantined 0",
        "carol-imap  needs_auth",
        "    imap, last success -, lag -, items 7, quarantined 3",
    ]


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_errors_and_fixes_follow_in_full_and_inert(width: int) -> None:
    lines = _shown(width)
    assert lines[0] == "crm-sync — sqlite:///crm.db"
    notes = lines[lines.index("") :]
    assert notes == [
        "",
        f"import-archive-2019: {SHOWN_ERROR}",
        f"  fix: {FIX}",
        "",
        "carol-imap: LOGIN failed",
        f"  fix: {AUTH_FIX}",
    ]
    assert not any("\x1b" in line or "\x07" in line for line in lines)


def test_a_fix_without_an_error_is_under_the_name_alone() -> None:
    rows = [ConnectorHealth("dave-mail", "mbox", "never_synced", fix="`crm-sync run` syncs it")]
    assert _shown(80, rows)[-3:] == ["", "dave-mail", "  fix: `crm-sync run` syncs it"]


def test_status_at_80_columns_through_the_real_cli(tmp_path: Path) -> None:
    mbox = write_mbox(
        tmp_path / "carol.mbox",
        [
            message(sender="carol@example.com", to=["Ann Lee <ann@acme.example>"], subject="Hi"),
            b"Subject: nothing else\n\nno sender, no recipients, no date\n",
        ],
    )
    missing = tmp_path / "moved-away.mbox"
    write_config(
        tmp_path,
        body=(
            f'[[connectors]]\nname = "carol-archive"\nkind = "mbox"\n'
            f'account = "carol@example.com"\npath = "{mbox}"\n\n'
            f'[[connectors]]\nname = "import-old-server-2019"\nkind = "mbox"\n'
            f'account = "bob@example.com"\npath = "{missing}"\n'
        ),
    )
    upgrade_database(tmp_path)
    assert run_cli("sync", cwd=tmp_path).returncode == 1

    shown = run_cli("status", cwd=tmp_path, env={"COLUMNS": "80"})
    assert shown.returncode == 1, shown.stderr
    print("\n--- crm-sync status at 80 columns\n" + shown.stdout)
    lines = shown.stdout.splitlines()
    table = lines[1 : lines.index("")]
    assert all(len(line) <= 80 for line in table), table
    header, *rows = table
    by_name = {row.split()[0]: row for row in rows}
    assert sorted(by_name) == ["carol-archive", "import-old-server-2019"]
    assert _cell(header, by_name["carol-archive"], "quarantined") == "1"
    assert _cell(header, by_name["import-old-server-2019"], "quarantined") == "0"
    assert "failing" in by_name["import-old-server-2019"].split()
    error = next(line for line in lines if line.startswith("import-old-server-2019: "))
    assert f"{missing}: no such mbox file" in error
    fix = lines[lines.index(error) + 1]
    assert fix == (
        "  fix: fix the error shown, then run "
        "`crm-sync sync --connector import-old-server-2019` to retry now"
    )

    as_json = run_cli("status", "--json", cwd=tmp_path, env={"COLUMNS": "80"})
    assert as_json.returncode == 1
    found = {row["connector"]: row for row in json.loads(as_json.stdout)}
    assert found["carol-archive"]["quarantined"] == 1
    assert error == f"import-old-server-2019: {found['import-old-server-2019']['last_error']}"
    assert fix == f"  fix: {found['import-old-server-2019']['fix']}"
