"""Eight agent processes and several people on one PostgreSQL database, against one process.

The same input -- customer mail dealt to eight connectors, every message to
two of them, and people's edits of the same 200 contacts, some of them two
people changing one field from the same base -- is applied twice: by eight
processes at once on one database, and by a single process in sequence on
another. The two databases must hold the same contacts, companies,
interactions, sources and facts; no interaction twice; no manual edit lost;
every real conflict kept with both values.
"""

from __future__ import annotations

import multiprocessing as mp
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.memory import MemoryConnector
from connectors.records import MailMessage
from storage.db import make_engine, session_factory, upgrade
from storage.edits import Edit, edit_contacts, snapshots
from storage.models import (
    CompanyDomain,
    Conflict,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    Observation,
)
from tests.support.mailbuilder import message
from tests.support.servers import temporary_pg_database

pytestmark = pytest.mark.postgres

AGENTS = 8
CONTACTS = 200
STAFF = ["alice@northwind.example", "dan@northwind.example", "zoe@northwind.example"]
SETTINGS = {"agent": {"internal_domains": ["northwind.example"]}}
BASE = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def _contact(n: int) -> tuple[str, list[str]]:
    """An address and the display names it is seen under over time."""
    first, last = f"First{n}", f"Last{n}"
    return f"p{n}@co{n % 25}.example", [f"{first} {last}", f"{first} Q. {last}", f"{last}, {first}"]


def _mail(seed: int) -> tuple[list[bytes], list[bytes]]:
    """Seed mail that makes every contact, then the mail the agents race on."""
    rng = random.Random(seed)
    seeds = []
    for n in range(CONTACTS):
        email, names = _contact(n)
        seeds.append(
            message(
                sender=STAFF[n % 3],
                to=[f"{names[0]} <{email}>"],
                subject=f"Welcome {n}",
                message_id=f"<seed{n}@northwind.example>",
                date=BASE + timedelta(minutes=n),
            )
        )
    racing = []
    for i in range(600):
        people = rng.sample(range(CONTACTS), rng.randint(1, 3))
        addresses = []
        for n in people:
            email, names = _contact(n)
            addresses.append(f"{rng.choice(names)} <{email}>")
        staff = rng.choice(STAFF)
        when = BASE + timedelta(days=1 + rng.randint(0, 60), minutes=rng.randint(0, 600))
        inbound = rng.random() < 0.4
        racing.append(
            message(
                sender=addresses[0] if inbound else staff,
                to=[staff] if inbound else addresses,
                cc=addresses[1:] if inbound else [],
                subject=f"Thread {i}",
                body=f"Message {i}.",
                message_id=f"<race{i}@mail.example>",
                date=when,
            )
        )
    return seeds, racing


def _edits(seed: int) -> list[tuple[str, str, dict[str, str]]]:
    """(user, email, changes): 40 lone edits, 15 pairs on one field, 15 on two fields."""
    rng = random.Random(seed)
    people = rng.sample(range(CONTACTS), 70)
    edits: list[tuple[str, str, dict[str, str]]] = []
    for n in people[:40]:
        edits.append((f"user{n % 5}", _contact(n)[0], {"title": f"Title {n}"}))
    for n in people[40:55]:
        email = _contact(n)[0]
        edits.append(("ann", email, {"title": f"Head of {n}"}))
        edits.append(("bob", email, {"title": f"Chief of {n}"}))
    for n in people[55:70]:
        email = _contact(n)[0]
        edits.append(("ann", email, {"title": f"Lead {n}"}))
        edits.append(("bob", email, {"phone": f"+44 20 7946 {n:04d}"}))
    return edits


def _deal(racing: list[bytes]) -> list[list[tuple[str, bytes]]]:
    """Every racing message to two of the agents (its own source id in each mailbox)."""
    shares: list[list[tuple[str, bytes]]] = [[] for _ in range(AGENTS)]
    for i, raw in enumerate(racing):
        for k in (i % AGENTS, (i * 3 + 1) % AGENTS):
            shares[k].append((f"msg-{i}", raw))
    return shares


def _sync(url: str, name: str, items: list[tuple[str, bytes]], owner: str) -> None:
    engine = make_engine(url)
    settings = parse_settings(SETTINGS, None)
    connector = MemoryConnector(
        name, [MailMessage(sid, owner, raw) for sid, raw in items], batch_size=25
    )
    result = sync_connector(
        session_factory(engine),
        connector,
        Policy.from_settings(settings, name, owner),
        kind="memory",
    )
    engine.dispose()
    assert result.status == "ok", result.error


def _edit(url: str, edits: list[tuple[str, str, dict[str, str]]], base: dict[str, Any]) -> None:
    engine = make_engine(url)
    sessions = session_factory(engine)
    for user, email, changes in edits:
        edit_contacts(sessions, [Edit(email, changes, base[email])], user=user)
    engine.dispose()


def _agent(
    url: str,
    number: int,
    items: list[tuple[str, bytes]],
    edits: list[tuple[str, str, dict[str, str]]],
    base: dict[str, Any],
    start: Any,
) -> None:
    start.wait()
    half = len(items) // 2
    _sync(url, f"agent-{number}", items[:half], STAFF[number % 3])
    _edit(url, edits, base)
    _sync(url, f"agent-{number}", items, STAFF[number % 3])


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    with (
        temporary_pg_database("crm_sync_race") as first,
        temporary_pg_database("crm_sync_race") as second,
    ):
        yield first, second


def _prepare(url: str, seeds: list[bytes], edited: set[str]) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    _sync(url, "seed", [(f"seed-{i}", raw) for i, raw in enumerate(seeds)], STAFF[0])
    engine = make_engine(url)
    with session_factory(engine)() as session:
        base = snapshots(session, edited)
    engine.dispose()
    return base


def _state(engine: Engine) -> dict[str, Any]:
    """Everything that must not depend on how many processes wrote it."""
    with session_factory(engine)() as session:
        email_of = dict(session.execute(select(ContactEmail.contact_id, ContactEmail.email)).all())
        conflicts = {
            (email_of[c.contact_id], c.field): frozenset(
                str(side.get("value")) for side in (c.values["manual"], c.values["latest"])
            )
            for c in session.scalars(select(Conflict))
        }
        contacts = {}
        for contact in session.scalars(select(Contact)):
            email = email_of[contact.id]
            fields = {
                "display_name": contact.display_name,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "title": contact.title,
                "phone": contact.phone,
                "company": contact.company_id is not None,
                "last_contacted_at": contact.last_contacted_at,
            }
            for field in [f for f in fields if (email, f) in conflicts]:
                assert fields.pop(field) in conflicts[(email, field)]
            contacts[email] = fields
        dedupe_of = dict(session.execute(select(Interaction.id, Interaction.dedupe_key)).all())
        return {
            "contacts": contacts,
            "conflicts": conflicts,
            "companies": set(session.scalars(select(CompanyDomain.domain))),
            "interactions": {
                (i.dedupe_key, i.kind, i.occurred_at, i.direction, i.subject, i.summary)
                for i in session.scalars(select(Interaction))
            },
            "participants": {
                (dedupe_of[p.interaction_id], p.email, p.role, email_of.get(p.contact_id))
                for p in session.scalars(select(InteractionParticipant))
            },
            "sources": {
                (s.connector, s.source_id, dedupe_of[s.interaction_id])
                for s in session.scalars(select(InteractionSource))
            },
            # of two people racing on one field, whoever committed first holds it:
            # the other's value is in the conflict row, compared above
            "observations": {
                (email_of[o.contact_id], o.field, o.value, o.source, o.manual)
                + (() if o.manual else (o.observed_at,))
                for o in session.scalars(select(Observation))
                if not (o.manual and (email_of[o.contact_id], o.field) in conflicts)
            },
            "raced": {
                (
                    email_of[o.contact_id],
                    o.field,
                    o.value in conflicts[(email_of[o.contact_id], o.field)],
                )
                for o in session.scalars(select(Observation))
                if o.manual and (email_of[o.contact_id], o.field) in conflicts
            },
        }


def test_eight_processes_end_where_one_process_does(two_databases: tuple[str, str]) -> None:
    concurrent_url, sequential_url = two_databases
    seeds, racing = _mail(seed=5)
    edits = _edits(seed=6)
    edited = {email for _, email, _ in edits}
    shares = _deal(racing)
    # the two edits of a pair go to different processes
    edit_shares: list[list[tuple[str, str, dict[str, str]]]] = [[] for _ in range(AGENTS)]
    for index, edit in enumerate(edits):
        edit_shares[index % AGENTS].append(edit)

    base = _prepare(sequential_url, seeds, edited)
    for number in range(AGENTS):
        _sync(sequential_url, f"agent-{number}", shares[number], STAFF[number % 3])
    _edit(sequential_url, edits, base)

    base = _prepare(concurrent_url, seeds, edited)
    context = mp.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(
            target=_agent,
            args=(concurrent_url, n, shares[n], edit_shares[n], base, start),
        )
        for n in range(AGENTS)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0] * AGENTS

    engines = [make_engine(concurrent_url), make_engine(sequential_url)]
    try:
        concurrent, sequential = (_state(e) for e in engines)
        with engines[0].connect() as connection:
            total, distinct = connection.execute(
                text("SELECT count(*), count(DISTINCT dedupe_key) FROM interactions")
            ).one()
    finally:
        for engine in engines:
            engine.dispose()

    assert total == distinct == len(seeds) + len(racing)
    pairs = {(email, "title") for email in {e for _, e, c in edits[40:70:2]}}
    assert set(concurrent["conflicts"]) == set(sequential["conflicts"]) == pairs
    for user, email, changes in edits[:40] + edits[70:]:
        for field, value in changes.items():
            assert concurrent["contacts"][email][field] == value, (user, email, field)
    for key in sequential:
        assert concurrent[key] == sequential[key], key
