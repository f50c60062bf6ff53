"""Keeping relationship figures current as batches commit, by adding what is new.

Recomputing a subject's figures reads its whole history, and the subjects a
batch touches most are the busiest customers, with the longest histories.
Most of what a batch brings is new: an interaction someone took part in that
they had not before (a *pair*). A pair changes a current row (one of today)
only by addition -- a count in each window it falls in, the first or last
interaction, one more interaction for each teammate in it -- so that is all
that is written; the result is the row a full recomputation would give.

Everything else is recomputed (``storage.relationships.refresh``): a pair
that went away or whose interaction changed (a meeting moved or cancelled, an
answer declined), a contact made with earlier mail relinked to them, a
contact moved to another company, a row of an earlier day or none yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import relationship_rules as rules
from storage.batching import chunks
from storage.history import team_of
from storage.models import (
    CompanyFigures,
    Contact,
    ContactFigures,
    Interaction,
    InteractionParticipant,
)
from storage.relationships import (
    Figures,
    companies_of,
    counted,
    derive,
    end_of,
    refresh,
    taking_part,
    today,
    write_rows,
)
from storage.upsert import table_of

Pair = tuple[int, int]
"""``(subject id, interaction id)``."""
Fact = tuple[datetime, str, str]
"""An interaction's ``when, kind, direction``."""


@dataclass(frozen=True)
class Pairs:
    """Who took part in a set of interactions: contacts, through them companies, the
    teammates of each interaction, and what each counted interaction was."""

    contacts: frozenset[Pair] = frozenset()
    companies: frozenset[Pair] = frozenset()
    teams: dict[int, frozenset[str]] = field(default_factory=dict)
    facts: dict[int, Fact] = field(default_factory=dict)
    """The interactions that count for figures (``storage.relationships.counted``) and
    happened before the end of today."""


def pairs_in(session: Session, interaction_ids: Iterable[int]) -> Pairs:
    """One query per chunk of interactions: their participants, with what figures need."""
    contacts: set[Pair] = set()
    companies: set[Pair] = set()
    teams: dict[int, set[str]] = defaultdict(set)
    facts: dict[int, Fact] = {}
    team = team_of(session)
    end = end_of(today())
    p, i = InteractionParticipant, Interaction
    for chunk in chunks(sorted(set(interaction_ids))):
        rows = session.execute(
            select(
                p.interaction_id,
                p.email,
                p.contact_id,
                Contact.company_id,
                taking_part(),
                i.occurred_at,
                i.kind,
                i.direction,
                counted(),
            )
            .join(i, i.id == p.interaction_id)
            .outerjoin(Contact, Contact.id == p.contact_id)
            .where(p.interaction_id.in_(chunk))
        )
        for row in rows:
            interaction_id, email, contact_id, company_id, takes_part = row[:5]
            at, kind, direction, counts = row[5:]
            mates = teams[interaction_id]
            if email in team:
                mates.add(email)
            if counts and at < end:
                facts[interaction_id] = (at, kind, direction)
            if contact_id is None or not takes_part:
                continue
            contacts.add((contact_id, interaction_id))
            if company_id is not None:
                companies.add((company_id, interaction_id))
    return Pairs(
        frozenset(contacts),
        frozenset(companies),
        {i: frozenset(m) for i, m in teams.items()},
        facts,
    )


def keep_current(
    session: Session,
    interaction_ids: Collection[int],
    before: Pairs,
    *,
    recompute_contacts: Collection[int] = (),
    recompute_companies: Collection[int] = (),
    created: Collection[int] = (),
) -> None:
    """Bring the figures of everyone in ``interaction_ids`` up to date, given who took part
    in them ``before`` the batch; the subjects to ``recompute`` whatever happened (their
    companies too, for contacts), and the contacts ``created`` by the batch (whose
    interactions, ``interaction_ids`` holds, reach their companies as new pairs)."""
    after = pairs_in(session, interaction_ids)
    # An interaction logged before that gained a teammate (a copy from another mailbox that
    # shows a Bcc) changes the team of everyone in it, which no pair records.
    grown = {i for i, mates in before.teams.items() if after.teams.get(i, mates) - mates}
    contacts = set(recompute_contacts) | {c for c, _ in before.contacts - after.contacts}
    contacts |= {c for c, i in after.contacts if i in grown}
    companies = set(recompute_companies) | {c for c, _ in before.companies - after.companies}
    companies |= {c for c, i in after.companies if i in grown}
    companies |= companies_of(session, contacts)
    new = {
        ContactFigures: _by_subject(after.contacts - before.contacts, contacts),
        CompanyFigures: _by_subject(after.companies - before.companies, companies),
    }
    facts, mates = after.facts, after.teams
    contacts |= _add(session, ContactFigures, "contact_id", new[ContactFigures], facts, mates)
    companies |= _add(session, CompanyFigures, "company_id", new[CompanyFigures], facts, mates)
    refresh(session, contacts=contacts | set(created), companies=companies)


def _by_subject(pairs: Iterable[Pair], skip: Collection[int]) -> dict[int, set[int]]:
    by_subject: dict[int, set[int]] = defaultdict(set)
    for subject, interaction_id in pairs:
        if subject not in skip:
            by_subject[subject].add(interaction_id)
    return by_subject


def _add(
    session: Session,
    model: type[Figures],
    key: str,
    by_subject: dict[int, set[int]],
    facts: dict[int, Fact],
    mates: dict[int, frozenset[str]],
) -> set[int]:
    """Add each subject's new interactions to its current row; the subjects whose row is
    not current (to be recomputed instead)."""
    if not by_subject:
        return set()
    day = today()
    end = end_of(day)
    table = table_of(model)
    rows: dict[int, dict[str, Any]] = {}
    for chunk in chunks(sorted(by_subject)):
        query = select(table).where(table.c[key].in_(chunk)).order_by(table.c[key])
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()  # see relationships.lock_rows
        rows |= {row[key]: dict(row) for row in session.execute(query).mappings()}
    behind = {s for s in by_subject if s not in rows or not _current(rows[s], day)}
    updated = []
    for subject in sorted(set(by_subject) - behind):
        values = rows[subject]
        values["team"] = dict(values["team"])
        for interaction_id in sorted(by_subject[subject] & facts.keys()):
            _count(values, facts[interaction_id], interaction_id, mates[interaction_id], end)
        derive(values)
        updated.append({"subject": values.pop(key), **values})
    write_rows(session, model, key, updated)
    return behind


def _current(row: dict[str, Any], day: date) -> bool:
    """Of today, and its first and last interactions still there (not deleted since)."""
    return (
        row["as_of"] == day
        and (row["first_at"] is None or row["first_interaction_id"] is not None)
        and (row["last_at"] is None or row["last_interaction_id"] is not None)
    )


def _count(
    values: dict[str, Any],
    fact: Fact,
    interaction_id: int,
    mates: frozenset[str],
    end: datetime,
) -> None:
    """One more interaction on a row, as a full recomputation would count it."""
    at, kind, direction = fact
    name = (
        "meetings" if kind == "meeting" else f"emails_{'in' if direction == 'inbound' else 'out'}"
    )
    for days in rules.WINDOWS:
        if at >= end - timedelta(days=days):
            values[f"{name}_{days}"] += 1
    recent = end - timedelta(days=30)
    if recent - timedelta(days=rules.TREND_BASELINE_DAYS) <= at < recent:
        values["before_90"] += 1
    first = (values["first_at"], values["first_interaction_id"])
    if first[0] is None or (at, interaction_id) < first:
        values["first_at"], values["first_interaction_id"] = at, interaction_id
    last = (values["last_at"], values["last_interaction_id"])
    if last[0] is None or (at, interaction_id) > last:
        values["last_at"], values["last_interaction_id"] = at, interaction_id
    if at >= end - timedelta(days=365):
        for email in mates:
            n, stamp = values["team"].get(email, (0, None))
            newest = at if stamp is None else max(at, datetime.fromisoformat(stamp))
            values["team"][email] = [n + 1, newest.isoformat()]
