"""Calendars never stop a sync: every .ics of the corpora goes through the real ``crm-sync
sync``, which exits 0; what cannot be read is in quarantine with the file and the reason."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.connectors.ical.test_files import CORPUS_FILES, EXPECTED_BAD
from tests.support.cli import run_cli, upgrade_database, write_config
from tests.support.icsbuilder import ics, write_ics
from tests.support.paths import FIXTURES

ME = "me@example.com"

ZONE_ONLY = """BEGIN:VTIMEZONE
TZID:Custom/Zone
BEGIN:STANDARD
TZNAME:CET
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
DTSTART:19701025T030000
RDATE;VALUE=DATE:19711031
END:STANDARD
END:VTIMEZONE
"""


def _setup(tmp_path: Path, db_url: str, calendars: Path) -> None:
    write_config(
        tmp_path,
        db_url,
        f'[[connectors]]\nname = "cal"\nkind = "ics"\naccount = "{ME}"\npath = "{calendars}"\n'
        'since = "2024-01-01"\n',
    )
    upgrade_database(tmp_path)


def _quarantined(tmp_path: Path) -> dict[str, str]:
    result = run_cli("status", "--quarantined", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return {row["source_id"]: row["reason"] for row in json.loads(result.stdout)}


def _summary_count(stdout: str, word: str) -> int:
    found = re.search(rf"{word} (\d+)", stdout)
    assert found is not None, stdout
    return int(found.group(1))


def test_every_corpus_file_syncs_and_the_bad_ones_are_quarantined(
    tmp_path: Path, db_url: str
) -> None:
    calendars = tmp_path / "calendars"
    for source in ("icalendar", "recurring-ical-events"):
        shutil.copytree(FIXTURES / source, calendars / source)
    write_config(
        tmp_path,
        db_url,
        f'[[connectors]]\nname = "cal"\nkind = "ics"\naccount = "{ME}"\npath = "{calendars}"\n',
    )
    upgrade_database(tmp_path)

    first = run_cli("sync", cwd=tmp_path, timeout=300)
    again = run_cli("sync", cwd=tmp_path, timeout=300)
    quarantined = _quarantined(tmp_path)

    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert "Traceback" not in first.stderr + again.stderr
    assert _summary_count(first.stdout, "logged") > 100
    assert _summary_count(first.stdout, "quarantined") == len(quarantined)
    assert (_summary_count(again.stdout, "read"), _summary_count(again.stdout, "quarantined")) == (
        0,
        0,
    )
    status = run_cli("status", "--json", cwd=tmp_path)
    [row] = json.loads(status.stdout)
    assert (row["state"], row["quarantined"]) == ("ok", len(quarantined))
    files = {source_id for source_id in quarantined if source_id.endswith(".ics")}
    assert files == EXPECTED_BAD
    corpus = set(CORPUS_FILES)
    for source_id, reason in quarantined.items():
        assert reason, source_id
        file_key = source_id if source_id in files else source_id.rsplit(".ics/", 1)[0] + ".ics"
        assert file_key in corpus, source_id


def test_zone_only_files_bad_sequences_and_shared_uids_sync_cleanly(
    tmp_path: Path, db_url: str
) -> None:
    calendars = tmp_path / "calendars"
    people = f"ORGANIZER:mailto:{ME}\nATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@customer.com"
    write_ics(calendars / "zones.ics", ics(preamble=ZONE_ONLY))
    write_ics(
        calendars / "meetings.ics",
        ics(
            f"UID:a@x\nDTSTART:20240305T100000Z\nSEQUENCE:abc\nSUMMARY:One\n{people}",
            f"UID:a@x\nDTSTART:20240312T100000Z\nSUMMARY:Two\n{people}",
            f"UID:b@x\nDTSTART:20240306T100000Z\nSUMMARY:Three\n{people}",
        ),
    )
    write_ics(calendars / "alone.ics", ics("UID:c@x\nDTSTART:20240307T100000Z\nSUMMARY:Solo"))
    write_ics(calendars / "broken.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n")
    _setup(tmp_path, db_url, calendars)

    result = run_cli("sync", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert _summary_count(result.stdout, "logged") == 3
    assert re.search(r"skipped\s+1\s+no_participants", result.stdout), result.stdout
    assert _quarantined(tmp_path) == {
        "broken.ics": "the file cannot be read as a calendar: ValueError: no complete "
        "VCALENDAR block"
    }


def test_a_zone_only_file_alone_is_not_an_error(tmp_path: Path) -> None:
    calendars = tmp_path / "calendars"
    write_ics(calendars / "zones.ics", ics(preamble=ZONE_ONLY))
    _setup(tmp_path, f"sqlite:///{tmp_path / 'crm.db'}", calendars)

    result = run_cli("sync", cwd=tmp_path)
    status = run_cli("status", "--json", cwd=tmp_path)

    assert (result.returncode, result.stderr.strip()) == (0, "")
    assert status.returncode == 0, status.stdout + status.stderr
    [row] = json.loads(status.stdout)
    assert (row["state"], row["last_error"]) == ("ok", None)
    assert _quarantined(tmp_path) == {}
