"""Tags by hand, from CSV and by rule, on both databases, with the audit rows they leave."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from storage import segments, tags
from storage.db import session_factory, transaction
from storage.models import (
    AuditLog,
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    ContactFigures,
)
from storage.tags import TagError

ACTOR = "user:ann"


@pytest.fixture
def ids(engine: Engine) -> Iterator[dict[str, int]]:
    """Three contacts (ann, ben, cy at acme.example) and the company Acme."""
    with transaction(session_factory(engine)) as session:
        acme = Company(name="Acme", domains=[CompanyDomain(domain="acme.example")])
        found: dict[str, int] = {}
        for name in ("ann", "ben", "cy"):
            contact = Contact(display_name=name.title(), company=acme)
            contact.emails.append(ContactEmail(email=f"{name}@acme.example"))
            session.add(contact)
            session.flush()
            found[name] = contact.id
        found["acme"] = acme.id
    yield found


def _tags(engine: Engine, kind: tags.Kind, subject: int) -> dict[str, str]:
    with Session(engine) as session:
        return {t.name: t.source for t in tags.tags_of(session, kind, subject)}


def _audit(engine: Engine) -> list[tuple[str, str, int | None, str]]:
    with Session(engine) as session:
        rows = session.scalars(
            select(AuditLog).where(AuditLog.action.in_(["tag", "untag"])).order_by(AuditLog.id)
        )
        return [(r.action, r.entity, r.entity_id, (r.after or r.before or {})["tag"]) for r in rows]


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("Customer", "customer"), ("  VIP   list ", "vip list"), ("<B>x", "<b>x")],
)
def test_names_are_normalised(raw: str, stored: str) -> None:
    assert tags.normalise_tag(raw) == stored


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "needs a name"),
        ("   ", "needs a name"),
        ("x" * 65, "at most 64"),
        ("a\x00b", "control"),
        ("a\u202eb", "control"),
        ("b2b/saas", "may not hold '/'"),
    ],
    ids=["empty", "blank", "too-long", "control", "bidi", "slash"],
)
def test_bad_names_are_refused(raw: str, message: str) -> None:
    with pytest.raises(TagError, match=message):
        tags.normalise_tag(raw)


def _add(session: Session, kind: tags.Kind, subjects: list[int], tag: str) -> tags.Changed:
    return tags.add_tag(session, kind, subjects, tag, source=ACTOR, actor=ACTOR)


def test_adding_and_removing_by_hand_is_idempotent_and_audited(
    engine: Engine, ids: dict[str, int]
) -> None:
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        first = _add(session, "contact", [ids["ann"], ids["ben"]], "Customer")
        again = _add(session, "contact", [ids["ann"]], "customer ")
        company = _add(session, "company", [ids["acme"]], "Customer")
    assert (first.tag, sorted(first.ids), again.ids) == (
        "customer",
        sorted([ids["ann"], ids["ben"]]),
        (),
    )
    assert company.ids == (ids["acme"],)
    assert _tags(engine, "contact", ids["ann"]) == {"customer": ACTOR}
    with Session(engine) as session:
        assert tags.list_tags(session) == [tags.TagCount("customer", 2, 1)]

    with transaction(sessions) as session:
        removed = tags.remove_tag(
            session, "contact", [ids["ann"], ids["cy"]], "CUSTOMER", actor=ACTOR
        )
        assert tags.remove_tag(session, "contact", [ids["ann"]], "customer", actor=ACTOR).ids == ()
        assert (
            tags.remove_tag(session, "contact", [ids["ann"]], "never-made", actor=ACTOR).ids == ()
        )
    assert removed.ids == (ids["ann"],)
    assert _tags(engine, "contact", ids["ann"]) == {}
    assert _audit(engine) == [
        ("tag", "contact", min(ids["ann"], ids["ben"]), "customer"),
        ("tag", "contact", max(ids["ann"], ids["ben"]), "customer"),
        ("tag", "company", ids["acme"], "customer"),
        ("untag", "contact", ids["ann"], "customer"),
    ]


def test_csv_import_reports_unknown_addresses(engine: Engine, ids: dict[str, int]) -> None:
    data = (
        "\ufeffEmail,Tag,domain\n"
        "ANN@acme.example,Customer,\n"
        "nobody@acme.example,customer,\n"
        ",partner,acme.example\n"
        ",partner,nowhere.example\n"
        "\n"
        "ben@acme.example,,\n"
        "ann@acme.example,customer,\n"
    ).encode()
    with transaction(session_factory(engine)) as session:
        result = tags.import_csv(session, data, file_name="fair.csv", actor=ACTOR)
    assert (result.rows, result.added, result.unchanged) == (6, 2, 0)
    assert result.problems == [
        "line 7: a tag needs a name (it was empty)",
        "line 3: no contact with the email nobody@acme.example",
        "line 5: no company with the domain nowhere.example",
    ]
    assert _tags(engine, "contact", ids["ann"]) == {"customer": "csv:fair.csv"}
    assert _tags(engine, "company", ids["acme"]) == {"partner": "csv:fair.csv"}
    with transaction(session_factory(engine)) as session:
        again = tags.import_csv(session, data, file_name="fair.csv", actor=ACTOR)
    assert (again.added, again.unchanged, len(again.problems)) == (0, 2, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name,tag\nann,x\n", "expected a `tag` column and an `email` or `domain` column"),
        (b"email\nann@acme.example\n", "expected a `tag` column"),
        (b"\xff\xfe,tag\n", "not UTF-8"),
        (b"email,tag\n" + b"a@b.example,x\n" * (tags.MAX_CSV_ROWS + 1), "more than 20000 rows"),
        (b"email,tag\n" + b"x" * tags.MAX_CSV_BYTES, "larger than"),
    ],
    ids=["no-address-column", "no-tag-column", "not-utf8", "too-many-rows", "too-large"],
)
def test_csv_files_refused_whole(sqlite_engine: Engine, data: bytes, message: str) -> None:
    with pytest.raises(TagError, match=message), transaction(session_factory(sqlite_engine)) as s:
        tags.import_csv(s, data, file_name="f.csv", actor=ACTOR)
    with Session(sqlite_engine) as session:
        assert tags.list_tags(session) == []


def _set_level(engine: Engine, contact_id: int, level: str) -> None:
    with transaction(session_factory(engine)) as session:
        found = session.get(ContactFigures, contact_id)
        if found is None:
            session.add(ContactFigures(contact_id=contact_id, as_of=date(2026, 6, 1), level=level))
        else:
            session.execute(
                update(ContactFigures)
                .where(ContactFigures.contact_id == contact_id)
                .values(level=level)
            )


def _apply(engine: Engine, tag: str = "warm") -> tags.RuleResult:
    with transaction(session_factory(engine)) as session:
        segment = segments.require_segment(session, "warm")
        return tags.apply_rule(
            session,
            "contact",
            segments.member_ids(segment),
            tag,
            rule=segment.name,
            actor=ACTOR,
        )


def test_a_rule_tags_members_and_untags_only_what_it_put_there(
    engine: Engine, ids: dict[str, int]
) -> None:
    ann, ben, cy = ids["ann"], ids["ben"], ids["cy"]
    for contact in (ann, ben, cy):
        _set_level(engine, contact, "medium")
    with transaction(session_factory(engine)) as session:
        segments.add_segment(session, "warm", "contact", {"level_at_least": "medium"}, actor=ACTOR)
        tags.add_tag(session, "contact", [cy], "warm", source="user:bob", actor="user:bob")

    first = _apply(engine)
    assert (sorted(first.added), first.removed, first.members) == (sorted([ann, ben]), (), 3)
    assert _tags(engine, "contact", ann) == {"warm": "rule:warm"}
    assert _tags(engine, "contact", cy) == {"warm": "user:bob"}
    assert _apply(engine) == tags.RuleResult("warm", "warm", (), (), 3)

    with transaction(session_factory(engine)) as session:  # a person takes Ben's tag over
        tags.add_tag(session, "contact", [ben], "warm", source="user:bob", actor="user:bob")
    for contact in (ann, ben, cy):
        _set_level(engine, contact, "weak")
    second = _apply(engine)
    assert (second.added, second.removed, second.members) == ((), (ann,), 0)
    assert _tags(engine, "contact", ann) == {}
    assert _tags(engine, "contact", ben) == {"warm": "user:bob"}
    assert _tags(engine, "contact", cy) == {"warm": "user:bob"}

    _set_level(engine, ann, "strong")
    assert _apply(engine).added == (ann,)
    assert [a for a in _audit(engine) if a[2] == ann] == [
        ("tag", "contact", ann, "warm"),
        ("untag", "contact", ann, "warm"),
        ("tag", "contact", ann, "warm"),
    ]
