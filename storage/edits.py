"""People editing the shared contacts: manual values, optimistic concurrency, conflict review.

A person's edit becomes *manual* observations (source = the person,
``observed_at`` = now), so the merge lets it beat every automatic value
(DESIGN rule 1) and keeps a newer automatic value as a suggestion; the
contact's columns are then re-derived by the same hook the agent uses
(``storage.ingest.apply_merge``). A blank value clears a field.

Optimistic concurrency (rule 4). An editor reads a :class:`Snapshot` -- the
contact's ``version`` and the values they saw -- and submits changes against
it. The write re-reads the contact and merges three ways
(:func:`storage.merge.three_way`): base = the snapshot, mine = the edit,
theirs = what *people* set since (a value the agent changed in the meantime
is not a person's, and manual beats automatic). Per edited field:

==========================================  ====================================
since the snapshot, the field was           the edit
==========================================  ====================================
set by nobody, or to the edit's value       applied
set by someone; the edit repeats the base   not applied: their value is newer
set by someone; the edit says otherwise     not applied: a ``conflicts`` row
                                            keeps both values
==========================================  ====================================

The field keeps the value committed first until someone resolves the
conflict: ``keep="manual"`` keeps that manual value, ``keep="latest"`` takes
the later edit (the one that lost the race), a ``value`` gives a third; each
writes a manual observation. The conflict's ``values`` hold both sides as
``{"manual": {...}, "latest": {...}}`` (value, source, observed_at), and
once resolved ``"resolved"`` holds the value chosen.

Every write goes through the ORM, so the flush checks ``version``: when
another writer commits between the re-read and the flush (PostgreSQL), the
flush fails with ``StaleDataError`` and the whole edit starts again from a
fresh read. SQLite takes its write lock when the transaction begins, so there
a race only shows as a snapshot older than the contact.

Everything a person does is audited as ``user:NAME``: field changes
(before/after), contacts and companies created, conflicts opened and resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from storage import audit, fields, merge
from storage.contact_lookup import first_email
from storage.db import is_retryable, retrying, transaction
from storage.ingest import (
    BatchWrite,
    Fact,
    NewContact,
    contact_ids,
    ensure_companies,
    load_observations,
    write_batch,
)
from storage.models import Company, Conflict, Contact, ContactEmail, Observation, utcnow
from storage.upsert import table_of

T = TypeVar("T")
Keep = Literal["manual", "latest"]
CompanyName = Callable[[str], str]

MAX_ATTEMPTS = 5


class EditError(Exception):
    """An edit that cannot be made as asked; nothing was written."""


class NoSuchContact(EditError):
    def __init__(self, emails: Sequence[str]) -> None:
        super().__init__(f"no contact with the address {', '.join(emails)}")
        self.emails = tuple(emails)


class NoSuchConflict(EditError):
    def __init__(self, conflict_id: int) -> None:
        super().__init__(f"no conflict {conflict_id}")


class ConflictClosed(EditError):
    def __init__(self, conflict_id: int, status: str) -> None:
        super().__init__(f"conflict {conflict_id} is already {status}")


class TooManyRetries(EditError):
    """Other writers kept committing first; the caller may simply try again."""


@dataclass(frozen=True)
class Snapshot:
    """What an editor saw: the contact, its ``version`` and every settable field's text."""

    contact_id: int
    version: int
    values: Mapping[str, str | None]


@dataclass(frozen=True)
class Edit:
    """Changes to the contact holding ``email``, made from ``base`` (``None``: from now).

    ``email`` is normalized as contact addresses are stored
    (``agent.mail.addresses.normalize_email``). ``changes`` maps field names
    (``storage.fields``) to text; ``None`` or a blank clears. With
    ``create``, a missing contact is created first (an import), with the
    company the caller chose for its domain.
    """

    email: str
    changes: Mapping[str, str | None]
    base: Snapshot | None = None
    create: NewContact | None = None


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class OpenedConflict:
    id: int
    field: str
    base: str | None
    manual: str | None
    latest: str | None
    manual_by: str | None


@dataclass(frozen=True)
class EditOutcome:
    """What an edit did to one contact.

    ``applied`` lists every field that took the edit's value (``before`` may
    equal ``after``: the value is now a person's); ``kept`` the fields left at
    a newer value someone set since the snapshot; ``conflicts`` those where
    both sides changed the field.
    """

    email: str
    contact_id: int
    created: bool
    applied: tuple[FieldChange, ...] = ()
    kept: tuple[str, ...] = ()
    conflicts: tuple[OpenedConflict, ...] = ()

    @property
    def changed(self) -> tuple[FieldChange, ...]:
        return tuple(c for c in self.applied if c.before != c.after)


@dataclass(frozen=True)
class EditResult:
    outcomes: tuple[EditOutcome, ...]
    attempts: int
    written: bool


@dataclass(frozen=True)
class Decision:
    """The pure part of an edit: which changes to apply, which conflict, which are outdated."""

    accepted: Mapping[str, str | None]
    conflicts: tuple[merge.FieldConflict, ...] = ()
    kept: tuple[str, ...] = ()


def decide(
    base: Mapping[str, str | None],
    changes: Mapping[str, str | None],
    current: Mapping[str, str | None],
    manual: Iterable[str],
) -> Decision:
    """Three-way merge of ``changes`` made from ``base`` into the ``current`` values.

    ``manual`` names the fields whose current value a person set; any other
    current value counts as unchanged since ``base``, because a person's
    value beats the agent's whatever the order.
    """
    people = set(manual)
    theirs = {name: current.get(name) if name in people else base.get(name) for name in changes}
    result = merge.three_way({name: base.get(name) for name in changes}, changes, theirs)
    conflicted = {c.field for c in result.conflicts}
    accepted = {
        name: value
        for name, value in changes.items()
        if name not in conflicted and result.merged[name] == _present(value)
    }
    kept = tuple(sorted(set(changes) - conflicted - set(accepted)))
    return Decision(accepted=accepted, conflicts=result.conflicts, kept=kept)


def _present(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _domain_as_name(domain: str) -> str:
    return domain


def snapshots(session: Session, emails: Iterable[str]) -> dict[str, Snapshot]:
    """Address -> what an editor sees now, for the addresses that belong to a contact."""
    contact_of = contact_ids(session, emails)
    contacts = _load_contacts(session, contact_of.values())
    return {
        email: Snapshot(
            contact_id, contacts[contact_id].version, fields.current(contacts[contact_id])
        )
        for email, contact_id in contact_of.items()
    }


def snapshot(session: Session, email: str) -> Snapshot | None:
    return snapshots(session, [email]).get(email)


def edit_contacts(
    sessions: sessionmaker[Session],
    edits: Sequence[Edit],
    *,
    user: str,
    dry_run: bool = False,
    company_name: CompanyName = _domain_as_name,
    max_attempts: int = MAX_ATTEMPTS,
) -> EditResult:
    """Apply ``edits`` in one transaction as ``user``, retried on a stale version.

    ``dry_run`` does all of it and rolls back, so what it reports is exactly
    what a real run would have done at that moment. ``company_name`` names a
    company created for a domain nobody owns yet.
    """

    def attempt(session: Session) -> list[EditOutcome]:
        return apply_edits(session, edits, user=user, now=utcnow(), company_name=company_name)

    outcomes, attempts = _retrying(sessions, attempt, max_attempts, dry_run=dry_run)
    return EditResult(tuple(outcomes), attempts, written=not dry_run)


def set_fields(
    sessions: sessionmaker[Session],
    email: str,
    changes: Mapping[str, str | None],
    *,
    user: str,
    base: Snapshot | None = None,
    company_name: CompanyName = _domain_as_name,
) -> EditOutcome:
    """One contact's fields, as ``user``, from ``base`` (what they saw; ``None``: now)."""
    result = edit_contacts(
        sessions, [Edit(email, changes, base)], user=user, company_name=company_name
    )
    return result.outcomes[0]


def apply_edits(
    session: Session,
    edits: Sequence[Edit],
    *,
    user: str,
    now: datetime,
    company_name: CompanyName = _domain_as_name,
) -> list[EditOutcome]:
    """One attempt at ``edits`` in the caller's transaction; ``StaleDataError`` propagates."""
    actor = audit.user(user)
    changes = [_parsed(edit.changes) for edit in edits]
    emails = [edit.email for edit in edits]
    if len(set(emails)) != len(emails):
        raise ValueError("one edit per contact: an address appears twice")
    existing = contact_ids(session, emails)
    contact_of = _contacts_for(session, edits, existing, actor)
    contacts = _load_contacts(session, contact_of.values())
    derived = {i: fields.derive(o) for i, o in load_observations(session, contacts.keys()).items()}
    targets = [contacts[contact_of[edit.email]] for edit in edits]
    plans = [
        _plan(edit, wanted, contact, derived[contact.id])
        for edit, wanted, contact in zip(edits, changes, targets, strict=True)
    ]

    domains = {d for _, plan in plans if (d := plan.accepted.get("company")) is not None}
    if domains:
        ensure_companies(session, {d: company_name(d) for d in domains}, actor=actor)
    for contact, (_, plan) in zip(targets, plans, strict=True):
        if plan.accepted or plan.conflicts:
            # Every write moves the version, even one that changes no column
            # (a value confirmed, a conflict opened), so it is checked like any.
            contact.updated_at = now
    facts = [
        Fact(edit.email, name, value or "", user, now, manual=True)
        for edit, (_, plan) in zip(edits, plans, strict=True)
        for name, value in plan.accepted.items()
    ]
    with session.no_autoflush:  # one UPDATE (and one version) per contact, at the merge's flush
        write_batch(session, BatchWrite(facts=facts), propagate_deletes=False, actor=actor)

    outcomes = [
        EditOutcome(
            email=edit.email,
            contact_id=contact.id,
            created=edit.email not in existing,
            applied=tuple(
                FieldChange(name, before[name], fields.read(contact, name))
                for name in plan.accepted
            ),
            kept=plan.kept,
            conflicts=_open_conflicts(
                session, contact.id, plan.conflicts, derived[contact.id], user, actor, now
            ),
        )
        for edit, contact, (before, plan) in zip(edits, targets, plans, strict=True)
    ]
    session.flush()
    return outcomes


def _contacts_for(
    session: Session, edits: Sequence[Edit], existing: Mapping[str, int], actor: str
) -> dict[str, int]:
    """Address -> contact id for every edit, creating those an edit may create."""
    creating = [e.create for e in edits if e.create is not None and e.email not in existing]
    if creating:
        write_batch(
            session, BatchWrite(new_contacts=creating), propagate_deletes=False, actor=actor
        )
    contact_of = contact_ids(session, [edit.email for edit in edits])
    missing = [edit.email for edit in edits if edit.email not in contact_of]
    if missing:
        raise NoSuchContact(missing)
    return contact_of


def _plan(
    edit: Edit,
    changes: Mapping[str, str | None],
    contact: Contact,
    derived: Mapping[str, merge.FieldValue],
) -> tuple[dict[str, str | None], Decision]:
    """The edited fields' values now, and what the edit does to them."""
    if edit.base is not None and edit.base.contact_id != contact.id:
        raise EditError(f"the snapshot of {edit.email} is of another contact")
    before = {name: fields.read(contact, name) for name in changes}
    base = edit.base.values if edit.base is not None else before
    manual = [name for name, value in derived.items() if value.manual]
    return before, decide(base, changes, before, manual)


def _parsed(changes: Mapping[str, str | None]) -> dict[str, str | None]:
    return {name: fields.parse(name, value) for name, value in changes.items()}


def _load_contacts(session: Session, ids: Iterable[int]) -> dict[int, Contact]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.scalars(
        select(Contact)
        .where(Contact.id.in_(wanted))
        .options(selectinload(Contact.company).selectinload(Company.domains))
    )
    return {contact.id: contact for contact in rows}


def _open_conflicts(
    session: Session,
    contact_id: int,
    conflicts: Sequence[merge.FieldConflict],
    derived: Mapping[str, merge.FieldValue],
    user: str,
    actor: str,
    now: datetime,
) -> tuple[OpenedConflict, ...]:
    """A ``conflicts`` row per field, unless the same one is open already (a repeated edit)."""
    if not conflicts:
        return ()
    already = {
        (c.field, _side(c.values, "manual"), _side(c.values, "latest")): c
        for c in session.scalars(
            select(Conflict).where(Conflict.contact_id == contact_id, Conflict.status == "open")
        )
    }
    opened = []
    for conflict in conflicts:
        theirs = derived.get(conflict.field)
        row = already.get((conflict.field, conflict.theirs, conflict.mine))
        if row is None:
            row = Conflict(
                contact_id=contact_id,
                field=conflict.field,
                base_value=conflict.base,
                values={
                    "manual": _side_record(
                        conflict.theirs,
                        theirs.source if theirs else None,
                        theirs.observed_at if theirs else None,
                    ),
                    "latest": _side_record(conflict.mine, user, now),
                },
                status="open",
                created_at=now,
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                [
                    audit.Change(
                        actor,
                        "conflict_opened",
                        "contact",
                        contact_id,
                        {"field": conflict.field, "value": conflict.base},
                        {
                            "conflict": row.id,
                            "field": conflict.field,
                            "manual": conflict.theirs,
                            "latest": conflict.mine,
                        },
                    )
                ],
            )
        opened.append(
            OpenedConflict(
                id=row.id,
                field=conflict.field,
                base=conflict.base,
                manual=conflict.theirs,
                latest=conflict.mine,
                manual_by=theirs.source if theirs else None,
            )
        )
    return tuple(opened)


def _side(values: Mapping[str, Any], side: str) -> str | None:
    held = values.get(side)
    return held.get("value") if isinstance(held, dict) else None


def _side_record(value: str | None, source: str | None, at: datetime | None) -> dict[str, Any]:
    return {"value": value, "source": source, "observed_at": at.isoformat() if at else None}


@dataclass(frozen=True)
class Resolution:
    conflict_id: int
    field: str
    value: str | None
    how: str
    outcome: EditOutcome
    attempts: int = 1


def resolve_conflict(
    sessions: sessionmaker[Session],
    conflict_id: int,
    *,
    user: str,
    value: str | None = None,
    keep: Keep | None = None,
    company_name: CompanyName = _domain_as_name,
    max_attempts: int = MAX_ATTEMPTS,
) -> Resolution:
    """Settle a conflict as ``user``: keep one side, or give ``value`` (blank clears).

    The chosen value is written as a manual observation, so it holds from
    now on; the row is marked resolved (who, when, how) and both are audited.
    """
    if (value is None) == (keep is None):
        raise ValueError("give either a value or which side to keep")
    actor = audit.user(user)

    def attempt(session: Session) -> Resolution:
        now = utcnow()
        conflict = session.get(Conflict, conflict_id)
        if conflict is None:
            raise NoSuchConflict(conflict_id)
        if conflict.status != "open":
            raise ConflictClosed(conflict_id, conflict.status)
        chosen = (
            fields.parse(conflict.field, value) if keep is None else _side(conflict.values, keep)
        )
        how = "value" if keep is None else f"keep {keep}"
        email = session.scalar(
            select(ContactEmail.email)
            .where(ContactEmail.contact_id == conflict.contact_id)
            .order_by(ContactEmail.id)
            .limit(1)
        )
        if email is None:
            raise EditError(f"conflict {conflict_id}: its contact has no address left")
        outcome = apply_edits(
            session,
            [Edit(email, {conflict.field: chosen})],
            user=user,
            now=now,
            company_name=company_name,
        )[0]
        table = table_of(Conflict)
        closed = session.execute(
            update(table)
            .where(table.c.id == conflict_id, table.c.status == "open")
            .values(
                status="resolved",
                resolution=how,
                resolved_by=actor,
                resolved_at=now,
                values={**conflict.values, "resolved": _side_record(chosen, user, now)},
            )
            .returning(table.c.id)
        ).first()
        if closed is None:
            raise ConflictClosed(conflict_id, "resolved")
        before = outcome.applied[0].before if outcome.applied else None
        audit.record(
            session,
            [
                audit.Change(
                    actor,
                    "conflict_resolved",
                    "contact",
                    conflict.contact_id,
                    {"conflict": conflict_id, "field": conflict.field, "value": before},
                    {"conflict": conflict_id, "field": conflict.field, "value": chosen, "how": how},
                )
            ],
        )
        return Resolution(conflict_id, conflict.field, chosen, how, outcome)

    resolution, attempts = _retrying(sessions, attempt, max_attempts)
    return replace(resolution, attempts=attempts)


class _RolledBack(Exception):
    def __init__(self, result: object) -> None:
        super().__init__("dry run")
        self.result = result


def _retrying(
    sessions: sessionmaker[Session],
    work: Callable[[Session], T],
    max_attempts: int,
    *,
    dry_run: bool = False,
) -> tuple[T, int]:
    """``work`` in a fresh transaction until no other writer committed in between.

    Retried: the ORM's failed ``version`` check, and PostgreSQL's
    serialization failures and deadlocks; everything else propagates.
    """

    def once() -> T:
        try:
            with transaction(sessions) as session:
                result = work(session)
                if dry_run:
                    raise _RolledBack(result)
            return result
        except _RolledBack as rolled_back:
            return cast(T, rolled_back.result)

    try:
        return retrying(max_attempts, once)
    except Exception as exc:
        if not is_retryable(exc):
            raise
        raise TooManyRetries(
            f"other writers kept changing the contact; gave up after {max_attempts}"
        ) from exc


@dataclass(frozen=True)
class ConflictView:
    id: int
    contact_id: int
    email: str | None
    name: str | None
    field: str
    base: str | None
    manual: str | None
    manual_by: str | None
    latest: str | None
    latest_by: str | None
    status: str
    created_at: datetime
    resolution: str | None = None
    resolved_value: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None


def list_conflicts(
    session: Session, *, include_resolved: bool = False, contact_id: int | None = None
) -> list[ConflictView]:
    """Conflicts, oldest first; open ones only unless ``include_resolved``."""
    query = _conflicts(include_resolved, contact_id is not None)
    found = session.execute(query, {"contact_id": contact_id})
    return [_view(conflict, email, name) for conflict, email, name in found]


@cache
def _conflicts(include_resolved: bool, of_one_contact: bool) -> Select[Conflict, Any, Any]:
    """Built once per kind (every contact page asks), the contact bound at execution."""
    query = (
        select(Conflict, first_email(Conflict.contact_id), Contact.display_name)
        .join(Contact, Contact.id == Conflict.contact_id)
        .order_by(Conflict.created_at, Conflict.id)
    )
    if not include_resolved:
        query = query.where(Conflict.status == "open")
    if of_one_contact:
        query = query.where(Conflict.contact_id == bindparam("contact_id"))
    return query


def _view(conflict: Conflict, email: str | None, name: str | None) -> ConflictView:
    values = conflict.values or {}

    def by(side: str) -> str | None:
        held = values.get(side)
        return held.get("source") if isinstance(held, dict) else None

    return ConflictView(
        id=conflict.id,
        contact_id=conflict.contact_id,
        email=email,
        name=name,
        field=conflict.field,
        base=conflict.base_value,
        manual=_side(values, "manual"),
        manual_by=by("manual"),
        latest=_side(values, "latest"),
        latest_by=by("latest"),
        status=conflict.status,
        created_at=conflict.created_at,
        resolution=conflict.resolution,
        resolved_value=_side(values, "resolved"),
        resolved_by=conflict.resolved_by,
        resolved_at=conflict.resolved_at,
    )


@dataclass(frozen=True)
class Suggestion:
    """A newer automatic value that disagrees with the value a person set."""

    field: str
    current: str | None
    value: str
    source: str
    observed_at: datetime


def provenance(session: Session, contact_id: int) -> dict[str, merge.FieldValue]:
    """Each observed field's merged value with where it came from."""
    return fields.derive(load_observations(session, [contact_id])[contact_id])


def suggestions(session: Session, contact_id: int) -> list[Suggestion]:
    return suggestions_in(provenance(session, contact_id))


def suggestions_in(held_values: dict[str, merge.FieldValue]) -> list[Suggestion]:
    """The suggestions among fields already derived (:func:`provenance`)."""
    return [
        Suggestion(
            name,
            held.value,
            held.suggestion.value,
            held.suggestion.source,
            held.suggestion.observed_at,
        )
        for name, held in sorted(held_values.items())
        if held.suggestion is not None
    ]


def observations(session: Session, contact_id: int) -> list[Observation]:
    """A contact's observations with their provenance, by field, newest first."""
    return list(
        session.scalars(
            select(Observation)
            .where(Observation.contact_id == contact_id)
            .order_by(Observation.field, Observation.observed_at.desc(), Observation.id)
        )
    )
