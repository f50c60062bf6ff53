"""Each hostile case alone, on SQLite and PostgreSQL: what became of it, the time, the memory.

For every case of the hostile corpus (``tests/support/hostile_corpus.py``)
this runs ``crm-sync sync`` in a process of its own, once per database, over
a source holding that case and one ordinary message: an mbox for mail, a
folder for calendars. It prints one JSON line per case and database with the
outcome (logged, quarantined with its reason, limited by reason), the
exit status, the wall time and the process's peak RSS, then a table.
PostgreSQL is the server on 127.0.0.1:5432 (``$PGHOST``/``$PGPORT``/``$PGUSER``);
without one, only SQLite runs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.db import make_engine  # noqa: E402
from storage.models import Interaction, Quarantine, SyncState  # noqa: E402
from tests.support.cli import run_measured  # noqa: E402
from tests.support.hostile_corpus import CALENDARS, MAIL, OWNER  # noqa: E402
from tests.support.mailbuilder import write_mbox  # noqa: E402

PG = (
    f"postgresql+psycopg://{os.environ.get('PGUSER', 'postgres')}@"
    f"{os.environ.get('PGHOST', '127.0.0.1')}:{os.environ.get('PGPORT', '5432')}"
)


def _databases(folder: Path) -> dict[str, str]:
    found = {"sqlite": f"sqlite:///{folder / 'crm.db'}"}
    admin = make_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = f"crm_sync_bench_{uuid.uuid4().hex[:10]}"
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        found["postgresql"] = f"{PG}/{name}"
    except Exception as error:
        print(f"# PostgreSQL not reachable ({type(error).__name__}); SQLite only", file=sys.stderr)
    finally:
        admin.dispose()
    return found


def _drop(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    admin = make_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def _outcome(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            interactions = connection.execute(
                select(Interaction.kind, func.count()).group_by(Interaction.kind)
            ).all()
            quarantined = connection.execute(select(Quarantine.reason)).scalars().all()
            counters = connection.execute(select(SyncState.counters)).scalar_one()
    finally:
        engine.dispose()
    return {
        "logged": {kind: count for kind, count in interactions},
        "quarantined": sorted(quarantined),
        "limited": counters.get("limited", {}),
    }


COMPANIONS = {"collision-second": "collision-first", "uid-second": "uid-first"}
"""A collision needs the message or meeting whose identifier it reuses, synced first."""


def _source(case: str, folder: Path) -> str:
    cases = [c for c in (COMPANIONS.get(case), case) if c is not None]
    if case in MAIL:
        mbox = write_mbox(folder / "case.mbox", [*(MAIL[c]() for c in cases), MAIL["normal-1"]()])
        return f'kind = "mbox"\npath = "{mbox}"\n'
    calendars = folder / "calendars"
    calendars.mkdir()
    for name in [*cases, "normal"]:
        (calendars / f"{name}.ics").write_bytes(CALENDARS[name]())
    return f'kind = "ics"\npath = "{calendars}"\n'


def run_case(case: str, database: str, url: str, folder: Path) -> dict[str, Any]:
    config = folder / "crm-sync.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[agent]\ninternal_domains = ["northwind.example"]\n'
        f'[[connectors]]\nname = "hostile"\naccount = "{OWNER}"\n{_source(case, folder)}'
    )
    upgrade = run_measured("--config", str(config), "db", "upgrade", cwd=folder)
    if upgrade.returncode != 0:
        raise RuntimeError(upgrade.stderr)
    run = run_measured("--config", str(config), "sync", cwd=folder)
    return {
        "case": case,
        "database": database,
        "exit": run.returncode,
        "seconds": round(run.seconds, 2),
        "peak_rss_mib": round(run.peak_rss_mib, 1),
        **_outcome(url),
    }


def main() -> None:
    rows = []
    companions = set(COMPANIONS.values())
    cases = [c for c in [*MAIL, *CALENDARS] if not c.startswith("normal") and c not in companions]
    for case in cases:
        folder = Path(tempfile.mkdtemp(prefix="crm-sync-hostile-"))
        try:
            for database, url in _databases(folder).items():
                work = folder / database
                work.mkdir()
                try:
                    row = run_case(case, database, url, work)
                finally:
                    _drop(url)
                print(json.dumps({"bench": "hostile", **row}), flush=True)
                rows.append(row)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{'case':<24} {'database':<11} {'exit':>4} {'s':>6} {'MiB':>6}  outcome")
    for row in rows:
        outcome = ", ".join(
            [f"{n} {k}" for k, n in row["logged"].items()]
            + [f"quarantined: {r}" for r in row["quarantined"]]
            + [f"{k} {n}" for k, n in row["limited"].items()]
        )
        print(
            f"{row['case']:<24} {row['database']:<11} {row['exit']:>4} {row['seconds']:>6.2f} "
            f"{row['peak_rss_mib']:>6.1f}  {outcome}"
        )


if __name__ == "__main__":
    main()
