"""A large team database for the web benchmark (``bench/web.py``), built once and reused.

At scale 1.0: 10,000 companies (one domain each), 100,000 contacts (one address
each), 20 salespeople (users, their mailboxes, one Gmail connector each in
``sync_state``) and 2,000,000 interactions (90% email in threads of 1-6
messages, 10% meetings) with their participants and sources. Who is in touch
with whom is skewed: a contact's share of the threads is log-normal, so a few
contacts have thousands of interactions and most have a handful. Everything
comes from one seeded random generator, so two builds at the same scale are
the same database.

The schema is the project's own (``storage.db.upgrade``, every migration); the
rows go in with PostgreSQL's ``COPY`` and with SQLite's ``executemany`` in large
transactions, then ``contacts.last_contacted_at`` / ``last_interaction_id`` are
set by one SQL update and the statistics are gathered (``ANALYZE``).

A database is reused while its marker row (``bench_web_marker``: the scale, the
generator's version and the schema revision) matches; otherwise it is dropped
and built again. PostgreSQL: database ``crm_sync_bench_web`` (another scale
gets ``crm_sync_bench_web_s<scale>``); SQLite: ``bench/.cache/web.db``
(``web-s<scale>.db``).

Run alone to build (or check) the caches: ``python bench/web_data.py [--scale 0.01]``;
prints one JSON line per database with the generation time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get(
    "CRM_SYNC_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CACHE = Path(__file__).resolve().parent / ".cache"
GENERATOR_VERSION = 1
"""Bump when the generated rows change, so that cached databases are rebuilt."""
SEED = 20261204
PASSWORD = "bench-password-123"
TEAM_DOMAIN = "ourteam.example"
SALESPEOPLE = 20
END = datetime(2026, 11, 30, tzinfo=timezone.utc)
SPAN = timedelta(days=3 * 365)
CHUNK = 50_000


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "aaron abigail adam adrian aisha alan albert alex alice amara amelia ana andrea andrew "
    "angela anna anthony arjun ava barbara beatriz ben bianca brian bruno camila carla carlos "
    "caroline catherine charles chen chloe chris claire daniel david deborah diana diego dmitri "
    "elena eli elizabeth emily emma eric esther ethan eva fatima felix fernando fiona francesca "
    "gabriel george grace hannah harper hassan helen henry hiroshi ian ingrid isaac isabel ivan "
    "jack jacob james jane javier jennifer jessica joao john jonas jorge jose julia karen kate "
    "kenji kevin laura leah leo liam linda lucas lucia luis maria mark marta mateo maya mei "
    "michael mohammed nadia naomi nathan nina noah olga oliver olivia omar oscar pablo patricia "
    "paul pedro peter priya rachel rafael rahul raj rebecca ricardo robert rosa ryan samuel "
    "sara sebastian sofia sophie stefan susan thomas tom valentina victor william yuki zoe"
)
LAST = _words(
    "abbott adams ahmed alvarez anderson andersson bailey baker becker bennett bianchi brown "
    "campbell carter castillo chen clark collins cook cooper costa cruz da-silva davies davis "
    "diaz dubois edwards evans fernandez fischer fisher flores garcia gomez gonzalez gray green "
    "gupta hall harris hernandez hill hoffmann hughes jackson james jansen jensen johnson jones "
    "kaur khan kim king klein koch kowalski kumar lambert lee lewis lopez martin martinez meyer "
    "miller mitchell moore morales moreau muller murphy nakamura nguyen nielsen novak obrien "
    "oconnor olsen ortiz parker patel perez peters phillips popescu ramirez ramos reed reyes "
    "richter rivera roberts robinson rodriguez rossi russo sanchez santos sato schmidt schneider "
    "scott shah silva singh smith suzuki tanaka taylor thomas thompson torres turner walker "
    "wang watanabe weber white williams wilson wright wu yamamoto young zhang zimmermann"
)
COMPANY_A = _words(
    "acme apex arcadia atlas aurora beacon blue bright cedar cobalt coral crest delta eagle "
    "east ember evergreen falcon first forge golden granite green harbor highland horizon iron "
    "jade keystone lake liberty lunar maple meridian metro midway north nova oak orbit pacific "
    "peak pine pioneer polar prairie quantum redwood river rock sage silver sky solar summit "
    "sun terra tidal true union vertex vista west willow"
)
COMPANY_B = _words(
    "analytics bank biotech capital cloud consulting data dynamics energy engineering foods "
    "freight games health holdings industries insurance labs logistics media medical metals "
    "motors networks partners pharma retail robotics security software solutions studios "
    "systems telecom textiles travel ventures works"
)
COMPANY_SUFFIX = ("Inc", "Ltd", "GmbH", "LLC", "SA", "AG", "BV", "Group", "Co")
SUBJECT_WORDS = _words(
    "renewal pricing proposal contract invoice demo onboarding roadmap quarterly review "
    "kickoff follow-up question update meeting agenda timeline budget pilot rollout training "
    "support escalation feedback integration security audit licence order shipment forecast"
)
SNIPPET_WORDS = _words(
    "thanks for the call yesterday we discussed next steps could you send over the updated "
    "numbers before friday our team reviewed the proposal and has a few questions about "
    "timing happy to set up time with legal to finalise the terms let me know what works "
    "attached is the summary of where we landed looking forward to working together"
)
THREAD_LENGTHS = (1, 2, 3, 4, 5, 6)
THREAD_WEIGHTS = (35, 25, 15, 10, 8, 7)


@dataclass(frozen=True)
class Scale:
    factor: float
    companies: int
    contacts: int
    interactions: int
    salespeople: int = SALESPEOPLE

    @classmethod
    def of(cls, factor: float) -> Scale:
        return cls(
            factor=factor,
            companies=max(10, round(10_000 * factor)),
            contacts=max(100, round(100_000 * factor)),
            interactions=max(1_000, round(2_000_000 * factor)),
        )

    def marker(self, revision: str | None) -> str:
        return json.dumps(
            {
                "generator": GENERATOR_VERSION,
                "seed": SEED,
                "companies": self.companies,
                "contacts": self.contacts,
                "interactions": self.interactions,
                "salespeople": self.salespeople,
                "revision": revision,
            },
            sort_keys=True,
        )

    @property
    def suffix(self) -> str:
        return "" if self.factor == 1.0 else "_s" + f"{self.factor:g}".replace(".", "_")


def rep_email(number: int) -> str:
    return f"rep{number}@{TEAM_DOMAIN}"


def postgres_url(scale: Scale) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/crm_sync_bench_web{scale.suffix}"


def sqlite_file(scale: Scale) -> Path:
    return CACHE / f"web{scale.suffix.replace('_s', '-s', 1)}.db"


def sqlite_url(scale: Scale) -> str:
    return f"sqlite:///{sqlite_file(scale)}"


def search_terms() -> list[str]:
    """Lower-case terms of three or more characters that the data holds: first and last
    names, company words and parts of domains."""
    terms = [w for w in FIRST + LAST + COMPANY_A + COMPANY_B if len(w) >= 3]
    terms += [w[:4] for w in FIRST + LAST if len(w) >= 5]
    terms += [f"{a}{b}" for a, b in zip(COMPANY_A[::5], COMPANY_B[::3], strict=False)]
    return sorted(set(terms))


# -- the rows --------------------------------------------------------------------------------


class Rows:
    """Every row of the database, in insertion order, as plain tuples.

    ``stamp`` renders an epoch second as the database wants it: SQLAlchemy's SQLite
    text format, or an ISO timestamp with its offset for PostgreSQL.
    """

    def __init__(self, scale: Scale, stamp: Callable[[float], str]) -> None:
        self.scale = scale
        self.stamp = stamp
        rng = random.Random(SEED)
        self.rng = rng
        self.now = stamp(END.timestamp())
        self.company_names: list[str] = []
        self.domains: list[str] = []
        seen: set[str] = set()
        for number in range(1, scale.companies + 1):
            a, b = rng.choice(COMPANY_A), rng.choice(COMPANY_B)
            self.company_names.append(
                f"{a.title()} {b.title()} {rng.choice(COMPANY_SUFFIX)}"
                if rng.random() < 0.7
                else f"{a.title()}{b} {number}"
            )
            domain = f"{a}{b}.example"
            if domain in seen:
                domain = f"{a}{b}{number}.example"
            seen.add(domain)
            self.domains.append(domain)
        # contact -> company (some companies are far bigger than others), name, address
        company_weights = [rng.paretovariate(1.3) for _ in range(scale.companies)]
        self.contact_company = rng.choices(
            range(1, scale.companies + 1), weights=company_weights, k=scale.contacts
        )
        self.contact_names: list[str] = []
        self.contact_emails: list[str] = []
        used: set[str] = set()
        for index in range(scale.contacts):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            self.contact_names.append(f"{first.title()} {last.title().replace('-', ' ')}")
            local = f"{first}.{last}"
            domain = self.domains[self.contact_company[index] - 1]
            address, n = f"{local}@{domain}", 1
            while address in used:
                n += 1
                address = f"{local}{n}@{domain}"
            used.add(address)
            self.contact_emails.append(address)
        self.colleagues: dict[int, list[int]] = {}
        for contact, company in enumerate(self.contact_company, start=1):
            self.colleagues.setdefault(company, []).append(contact)
        # a contact's share of threads: log-normal, so a few are very busy
        weights = [rng.lognormvariate(0.0, 1.6) for _ in range(scale.contacts)]
        self.contact_cum = list(_accumulate(weights))
        self.company_rep = [rng.randrange(scale.salespeople) for _ in range(scale.companies)]

    def companies(self) -> Iterator[tuple[Any, ...]]:
        created = self.stamp((END - SPAN).timestamp())
        for number, name in enumerate(self.company_names, start=1):
            yield (number, name, created, created)

    def company_domains(self) -> Iterator[tuple[Any, ...]]:
        created = self.stamp((END - SPAN).timestamp())
        for number, domain in enumerate(self.domains, start=1):
            yield (number, number, domain, created)

    def contacts(self, false: Any) -> Iterator[tuple[Any, ...]]:
        created = self.stamp((END - SPAN).timestamp())
        for number, name in enumerate(self.contact_names, start=1):
            first, _, last = name.partition(" ")
            company = self.contact_company[number - 1]
            yield (number, name, first, last, false, company, 1, "{}", created, created)

    def contact_email_rows(self) -> Iterator[tuple[Any, ...]]:
        created = self.stamp((END - SPAN).timestamp())
        for number, address in enumerate(self.contact_emails, start=1):
            yield (number, number, address, created)

    def users(self, password_hash: str, false: Any) -> Iterator[tuple[Any, ...]]:
        for n in range(self.scale.salespeople):
            role = "admin" if n == 0 else "member"
            yield (n + 1, rep_email(n), f"Rep {n}", role, password_hash, false, self.now)

    def user_mailboxes(self) -> Iterator[tuple[Any, ...]]:
        for n in range(self.scale.salespeople):
            yield (n + 1, n + 1, rep_email(n))

    def sync_state(self) -> Iterator[tuple[Any, ...]]:
        for n in range(self.scale.salespeople):
            yield (f"rep{n}-gmail", "gmail", "ok", self.now, self.now, rep_email(n), "{}", self.now)

    def interactions(
        self,
    ) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]], tuple[Any, ...]]]:
        """(interaction, its participants, its source) for every interaction."""
        rng = random.Random(SEED + 1)
        scale, stamp = self.scale, self.stamp
        start, span = (END - SPAN).timestamp(), SPAN.total_seconds()
        contacts = range(1, scale.contacts + 1)
        number, thread_number, participant = 0, 0, 0
        while number < scale.interactions:
            primaries = rng.choices(contacts, cum_weights=self.contact_cum, k=4096)
            for primary in primaries:
                if number >= scale.interactions:
                    break
                company = self.contact_company[primary - 1]
                rep = self.company_rep[company - 1] if rng.random() < 0.7 else None
                rep = rng.randrange(scale.salespeople) if rep is None else rep
                team = self.colleagues[company]
                others = rng.sample(team, min(len(team), rng.randrange(3))) if len(team) > 1 else []
                people = [primary, *(c for c in others if c != primary)][:3]
                at = start + rng.random() * (span - 40 * 86_400)
                private = rng.random() < 0.05
                meeting = rng.random() < 0.1
                thread_number += 1
                length = 1 if meeting else rng.choices(THREAD_LENGTHS, THREAD_WEIGHTS)[0]
                subject = f"{rng.choice(SUBJECT_WORDS).title()} {rng.choice(SUBJECT_WORDS)}"
                outbound = rng.random() < 0.5
                for _ in range(length):
                    if number >= scale.interactions:
                        break
                    number += 1
                    when = stamp(at)
                    snippet = " ".join(rng.choices(SNIPPET_WORDS, k=rng.randrange(12, 30)))
                    row = (
                        number,
                        "meeting" if meeting else "email",
                        f"bench:{number}",
                        when,
                        stamp(at + 3600) if meeting else None,
                        subject if meeting or length == 1 else f"Re: {subject}",
                        snippet,
                        "outbound" if outbound else "inbound",
                        None if meeting else f"<thread-{thread_number}@bench.example>",
                        "private" if private else "shared",
                        "active",
                        rep_email(rep),
                        when,
                        when,
                    )
                    parts: list[tuple[Any, ...]] = []
                    if meeting:
                        roles = ["organizer"] + ["attendee"] * len(people)
                    elif outbound:
                        roles = ["from", "to"] + ["cc"] * (len(people) - 1)
                    else:
                        roles = ["to", "from"] + ["cc"] * (len(people) - 1)
                    participant += 1
                    parts.append(
                        (participant, number, None, rep_email(rep), f"Rep {rep}", roles[0])
                    )
                    for contact, role in zip(people, roles[1:], strict=True):
                        participant += 1
                        parts.append(
                            (
                                participant,
                                number,
                                contact,
                                self.contact_emails[contact - 1],
                                self.contact_names[contact - 1],
                                role,
                            )
                        )
                    source = (number, number, f"rep{rep}-gmail", f"{number:x}", when)
                    yield row, parts, source
                    at += rng.uniform(600, 2 * 86_400)
                    outbound = not outbound


def _accumulate(values: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


COLUMNS = {
    "companies": "id, name, created_at, updated_at",
    "company_domains": "id, company_id, domain, created_at",
    "contacts": "id, display_name, first_name, last_name, do_not_contact, company_id, "
    "version, extra, created_at, updated_at",
    "contact_emails": "id, contact_id, email, created_at",
    "users": "id, email, display_name, role, password_hash, disabled, created_at",
    "user_mailboxes": "id, user_id, account",
    "sync_state": "connector, kind, status, last_success_at, last_run_at, account, counters, "
    "updated_at",
    "interactions": "id, kind, dedupe_key, occurred_at, ends_at, subject, summary, direction, "
    "thread, visibility, status, owner, created_at, updated_at",
    "interaction_participants": "id, interaction_id, contact_id, email, name, role",
    "interaction_sources": "id, interaction_id, connector, source_id, seen_at",
}


# -- loading ---------------------------------------------------------------------------------


class Progress:
    def __init__(self, label: str) -> None:
        self.label = label
        self.started = self.last = time.perf_counter()
        self.rows = 0

    def add(self, rows: int, table: str) -> None:
        self.rows += rows
        now = time.perf_counter()
        if now - self.last >= 5.0:
            self.last = now
            rate = self.rows / (now - self.started)
            print(
                f"[{self.label}] {table}: {self.rows:,} rows, {rate:,.0f} rows/s",
                file=sys.stderr,
                flush=True,
            )

    def note(self, text: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[{self.label}] {text} ({elapsed:.1f} s)", file=sys.stderr, flush=True)


def _chunks(rows: Iterable[tuple[Any, ...]], size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _split(
    rows: Rows,
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Interactions, participants and sources, a chunk of interactions at a time."""
    interactions: list[tuple[Any, ...]] = []
    participants: list[tuple[Any, ...]] = []
    sources: list[tuple[Any, ...]] = []
    for row, parts, source in rows.interactions():
        interactions.append(row)
        participants.extend(parts)
        sources.append(source)
        if len(interactions) >= CHUNK:
            yield interactions, participants, sources
            interactions, participants, sources = [], [], []
    if interactions:
        yield interactions, participants, sources


def _password_hash() -> str:
    from storage.users import hash_password

    return hash_password(PASSWORD)


def _sqlite_stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _postgres_stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _read_marker(engine: Any) -> str | None:
    from sqlalchemy import inspect, text

    if "bench_web_marker" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as connection:
        return connection.execute(text("SELECT params FROM bench_web_marker")).scalar()  # type: ignore[no-any-return]


def _write_marker(engine: Any, marker: str) -> None:
    from sqlalchemy import text

    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS bench_web_marker (params TEXT)"))
        connection.execute(text("DELETE FROM bench_web_marker"))
        connection.execute(text("INSERT INTO bench_web_marker VALUES (:p)"), {"p": marker})


def ensure_postgres(scale: Scale) -> dict[str, Any]:
    """The PostgreSQL database at ``scale``, built unless a matching one is there."""
    from sqlalchemy import text

    from storage.db import head_revision, make_engine, upgrade

    url = postgres_url(scale)
    name = url.rsplit("/", 1)[1]
    marker = scale.marker(head_revision())
    admin = make_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
        if exists:
            engine = make_engine(url)
            found = _read_marker(engine)
            engine.dispose()
            if found == marker:
                return {"url": url, "built": False, "seconds": 0.0}
        started = time.perf_counter()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    engine = make_engine(url)
    upgrade(engine)
    progress = Progress("postgresql")
    rows = Rows(scale, _postgres_stamp)
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()

        def copy(table: str, data: Iterable[tuple[Any, ...]]) -> None:
            with cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as pipe:
                for count, row in enumerate(data, start=1):
                    pipe.write_row(row)
                    if count % 10_000 == 0:
                        progress.add(10_000, table)

        copy("companies", rows.companies())
        copy("company_domains", rows.company_domains())
        copy("contacts", rows.contacts(False))
        copy("contact_emails", rows.contact_email_rows())
        copy("users", rows.users(_password_hash(), False))
        copy("user_mailboxes", rows.user_mailboxes())
        copy("sync_state", rows.sync_state())
        raw.commit()
        progress.note("people and companies loaded")
        for interactions, participants, sources in _split(rows):
            copy("interactions", interactions)
            copy("interaction_participants", participants)
            copy("interaction_sources", sources)
            raw.commit()
        progress.note("interactions loaded")
        for table in COLUMNS:
            if table != "sync_state":
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        cursor.execute(
            """
            UPDATE contacts AS c
            SET last_contacted_at = latest.occurred_at, last_interaction_id = latest.id
            FROM (
                SELECT DISTINCT ON (p.contact_id) p.contact_id, i.occurred_at, i.id
                FROM interaction_participants AS p
                JOIN interactions AS i ON i.id = p.interaction_id
                WHERE p.contact_id IS NOT NULL
                ORDER BY p.contact_id, i.occurred_at DESC, i.id DESC
            ) AS latest
            WHERE c.id = latest.contact_id
            """
        )
        raw.commit()
        progress.note("last contacted set")
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    progress.note("analysed")
    _write_marker(engine, marker)
    engine.dispose()
    return {"url": url, "built": True, "seconds": time.perf_counter() - started}


def ensure_sqlite(scale: Scale) -> dict[str, Any]:
    """The SQLite file at ``scale``, built unless a matching one is there."""
    from storage.db import head_revision, make_engine, upgrade

    path = sqlite_file(scale)
    url = sqlite_url(scale)
    marker = scale.marker(head_revision())
    CACHE.mkdir(parents=True, exist_ok=True)
    if path.exists():
        engine = make_engine(url)
        found = _read_marker(engine)
        engine.dispose()
        if found == marker:
            return {"url": url, "built": False, "seconds": 0.0}
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    progress = Progress("sqlite")
    rows = Rows(scale, _sqlite_stamp)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-1000000")
        connection.execute("PRAGMA temp_store=MEMORY")

        def insert(table: str, data: Iterable[tuple[Any, ...]]) -> None:
            columns = COLUMNS[table]
            marks = ", ".join("?" * (columns.count(",") + 1))
            statement = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
            for chunk in _chunks(data):
                connection.executemany(statement, chunk)
                progress.add(len(chunk), table)

        connection.execute("BEGIN")
        insert("companies", rows.companies())
        insert("company_domains", rows.company_domains())
        insert("contacts", rows.contacts(0))
        insert("contact_emails", rows.contact_email_rows())
        insert("users", rows.users(_password_hash(), 0))
        insert("user_mailboxes", rows.user_mailboxes())
        insert("sync_state", rows.sync_state())
        connection.execute("COMMIT")
        progress.note("people and companies loaded")
        for interactions, participants, sources in _split(rows):
            connection.execute("BEGIN")
            insert("interactions", interactions)
            insert("interaction_participants", participants)
            insert("interaction_sources", sources)
            connection.execute("COMMIT")
        progress.note("interactions loaded")
        connection.execute("BEGIN")
        connection.execute(
            """
            UPDATE contacts SET
                last_interaction_id = (
                    SELECT i.id FROM interaction_participants AS p
                    JOIN interactions AS i ON i.id = p.interaction_id
                    WHERE p.contact_id = contacts.id
                    ORDER BY i.occurred_at DESC, i.id DESC LIMIT 1
                )
            """
        )
        connection.execute(
            """
            UPDATE contacts SET last_contacted_at = (
                SELECT occurred_at FROM interactions WHERE id = contacts.last_interaction_id
            )
            WHERE last_interaction_id IS NOT NULL
            """
        )
        connection.execute("COMMIT")
        progress.note("last contacted set")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA optimize")
        connection.execute("PRAGMA journal_mode=WAL")
        progress.note("analysed")
    finally:
        connection.close()
    engine = make_engine(url)
    _write_marker(engine, marker)
    engine.dispose()
    return {"url": url, "built": True, "seconds": time.perf_counter() - started}


def ensure(kind: str, scale: Scale) -> dict[str, Any]:
    return ensure_postgres(scale) if kind == "postgresql" else ensure_sqlite(scale)


def busiest_contacts(engine: Any, share: float = 0.01) -> list[int]:
    """The ids of the ``share`` of contacts with the most interactions."""
    from sqlalchemy import text

    with engine.connect() as connection:
        total = int(connection.execute(text("SELECT count(*) FROM contacts")).scalar() or 0)
        rows = connection.execute(
            text(
                "SELECT contact_id FROM interaction_participants WHERE contact_id IS NOT NULL "
                "GROUP BY contact_id ORDER BY count(*) DESC, contact_id LIMIT :n"
            ),
            {"n": max(1, math.ceil(total * share))},
        )
        return [int(r[0]) for r in rows]


def emit(bench: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": bench, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def report(kind: str, scale: Scale, result: dict[str, Any]) -> None:
    emit(
        f"web.generate.{kind}",
        result["seconds"],
        "s",
        built=result["built"],
        scale=scale.factor,
        companies=scale.companies,
        contacts=scale.contacts,
        interactions=scale.interactions,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args(argv)
    scale = Scale.of(args.scale)
    for kind in ("postgresql", "sqlite"):
        if args.only in (None, kind):
            report(kind, scale, ensure(kind, scale))


if __name__ == "__main__":
    main()
