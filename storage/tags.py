"""Tags on contacts and companies: by hand, from a CSV file, and by rule.

A tag link records who put it there (its ``source``): a person
(``user:NAME``), a file (``csv:FILE``) or a rule (``rule:SEGMENT``). Adding
is idempotent: a tag already there stays, and only a link a rule made is
taken over by a person or a file, so that a rule never removes what someone
chose. A rule (:func:`apply_rule`) tags every current member of a segment
and, when applied again, untags those who left it, but only where that rule
alone put the tag. Every link added or removed is one audit row on the
contact or company (``tag`` / ``untag``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage import audit
from storage.batching import chunks
from storage.models import CompanyDomain, CompanyTag, ContactEmail, ContactTag, Tag
from storage.upsert import insert_for, table_of

MAX_TAG = 64
MAX_CSV_BYTES = 2_000_000
MAX_CSV_ROWS = 20_000
RULE = "rule:"
Kind = Literal["contact", "company"]


class TagError(ValueError):
    """A tag, a file or a rule that cannot be applied as asked; nothing was written."""


def normalise_tag(name: str) -> str:
    """A tag as stored: trimmed, inner spaces single, lower-case, at most :data:`MAX_TAG`,
    printable, and without ``/`` (the API names a tag in a path: ``.../tags/TAG``)."""
    cleaned = " ".join(name.split()).lower()
    if not cleaned:
        raise TagError("a tag needs a name (it was empty)")
    if len(cleaned) > MAX_TAG:
        raise TagError(f"a tag is at most {MAX_TAG} characters (this one has {len(cleaned)})")
    if not cleaned.isprintable():
        raise TagError("a tag may not hold control characters")
    if "/" in cleaned:
        raise TagError("a tag may not hold '/' (it names the tag in a URL)")
    return cleaned


def rule_source(segment: str) -> str:
    return f"{RULE}{segment}"


@dataclass(frozen=True)
class _Links:
    model: Any
    key: InstrumentedAttribute[int]


_LINKS = {
    "contact": _Links(ContactTag, ContactTag.contact_id),
    "company": _Links(CompanyTag, CompanyTag.company_id),
}


def _tag_id(session: Session, name: str) -> int:
    """The tag's id, made when it is new (``ON CONFLICT``: two writers make one tag)."""
    session.execute(insert_for(session, table_of(Tag)).values(name=name).on_conflict_do_nothing())
    found = session.scalar(select(Tag.id).where(Tag.name == name))
    assert found is not None
    return found


@dataclass(frozen=True)
class Changed:
    """Which subjects a write tagged or untagged; the others had it so already."""

    tag: str
    kind: Kind
    ids: tuple[int, ...]


def add_tag(
    session: Session, kind: Kind, ids: Iterable[int], tag: str, *, source: str, actor: str
) -> Changed:
    """Tag every subject of ``ids``; idempotent. A person's or a file's tag takes over a link
    a rule made (a rule will not remove it then); a rule never takes over another's."""
    name = normalise_tag(tag)
    links = _LINKS[kind]
    wanted = sorted(set(ids))
    if not wanted:
        return Changed(name, kind, ())
    tag_id = _tag_id(session, name)
    held = _held(session, links, tag_id, wanted)
    new = [i for i in wanted if i not in held]
    taken = [] if source.startswith(RULE) else [i for i in wanted if _by_rule(held.get(i))]
    _write_links(session, links, tag_id, new, taken, source)
    after = {"tag": name, "source": source}
    audit.record(
        session,
        [audit.Change(actor, "tag", kind, i, None, after) for i in new]
        + [
            audit.Change(actor, "tag", kind, i, {"tag": name, "source": held[i]}, after)
            for i in taken
        ],
    )
    return Changed(name, kind, tuple(new))


def _write_links(
    session: Session,
    links: _Links,
    tag_id: int,
    new: Sequence[int],
    taken: Sequence[int],
    source: str,
) -> None:
    """Insert the links of ``new``; give those of ``taken`` (a rule's) to ``source``."""
    for part in chunks(new):
        session.execute(
            insert_for(session, table_of(links.model))
            .values([{links.key.key: i, "tag_id": tag_id, "source": source} for i in part])
            .on_conflict_do_nothing()
        )
    for part in chunks(taken):
        session.execute(
            update(links.model)
            .where(links.model.tag_id == tag_id, links.key.in_(part))
            .values(source=source)
        )


def _held(
    session: Session, links: _Links, tag_id: int, ids: Sequence[int], *, source: str | None = None
) -> dict[int, str]:
    """Subject id -> the source of its link to the tag, for those of ``ids`` that have one."""
    held: dict[int, str] = {}
    for part in chunks(ids):
        query = select(links.key, links.model.source).where(
            links.model.tag_id == tag_id, links.key.in_(part)
        )
        if source is not None:
            query = query.where(links.model.source == source)
        held.update((key, src) for key, src in session.execute(query))
    return held


def _by_rule(source: str | None) -> bool:
    return source is not None and source.startswith(RULE)


def remove_tag(
    session: Session,
    kind: Kind,
    ids: Iterable[int],
    tag: str,
    *,
    actor: str,
    source: str | None = None,
) -> Changed:
    """Untag every subject of ``ids`` (only links from ``source`` when given); idempotent."""
    name = normalise_tag(tag)
    links = _LINKS[kind]
    wanted = sorted(set(ids))
    tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
    if tag_id is None or not wanted:
        return Changed(name, kind, ())
    held = _held(session, links, tag_id, wanted, source=source)
    for part in chunks(sorted(held)):
        session.execute(
            delete(links.model).where(links.model.tag_id == tag_id, links.key.in_(part))
        )
    audit.record(
        session,
        [
            audit.Change(actor, "untag", kind, i, {"tag": name, "source": held[i]}, None)
            for i in sorted(held)
        ],
    )
    return Changed(name, kind, tuple(sorted(held)))


# -- rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    tag: str
    rule: str
    added: tuple[int, ...]
    removed: tuple[int, ...]
    members: int


def apply_rule(
    session: Session,
    kind: Kind,
    members: Select[Any],
    tag: str,
    *,
    rule: str,
    actor: str,
) -> RuleResult:
    """Tag every member (``members`` selects their ids: ``storage.segments.member_ids``) with
    source ``rule:RULE``, and untag former members where this rule alone had tagged them."""
    name = normalise_tag(tag)
    source = rule_source(rule)
    links = _LINKS[kind]
    current = set(session.scalars(members))
    added = add_tag(session, kind, current, name, source=source, actor=actor)
    tag_id = _tag_id(session, name)
    ours = session.scalars(
        select(links.key).where(links.model.tag_id == tag_id, links.model.source == source)
    )
    left = [i for i in ours if i not in current]
    removed = remove_tag(session, kind, left, name, actor=actor, source=source)
    return RuleResult(name, rule, added.ids, removed.ids, len(current))


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagCount:
    name: str
    contacts: int
    companies: int


def list_tags(session: Session) -> list[TagCount]:
    """Every tag with how many contacts and companies carry it, most used first."""
    contacts = (
        select(ContactTag.tag_id, func.count().label("n")).group_by(ContactTag.tag_id).subquery()
    )
    companies = (
        select(CompanyTag.tag_id, func.count().label("n")).group_by(CompanyTag.tag_id).subquery()
    )
    n_contacts = func.coalesce(contacts.c.n, 0)
    n_companies = func.coalesce(companies.c.n, 0)
    rows = session.execute(
        select(Tag.name, n_contacts, n_companies)
        .outerjoin(contacts, contacts.c.tag_id == Tag.id)
        .outerjoin(companies, companies.c.tag_id == Tag.id)
        .order_by((n_contacts + n_companies).desc(), Tag.name)
    )
    return [TagCount(name, int(c), int(k)) for name, c, k in rows]


@dataclass(frozen=True)
class TagLink:
    name: str
    source: str
    created_at: datetime


def tags_of(session: Session, kind: Kind, subject_id: int) -> list[TagLink]:
    """A contact's or a company's tags by name, each with who put it there."""
    links = _LINKS[kind]
    rows = session.execute(
        select(Tag.name, links.model.source, links.model.created_at)
        .join(links.model, links.model.tag_id == Tag.id)
        .where(links.key == subject_id)
        .order_by(Tag.name)
    )
    return [TagLink(*row) for row in rows]


# -- CSV import ---------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What a CSV import did: rows read, links added, and the lines it could not use."""

    rows: int = 0
    added: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)


def import_csv(session: Session, data: bytes, *, file_name: str, actor: str) -> ImportResult:
    """Tags from CSV text with a ``tag`` column and an ``email`` or ``domain`` column.

    Unknown addresses and domains, and bad tags, are reported by line and
    skipped; a file over :data:`MAX_CSV_BYTES` or :data:`MAX_CSV_ROWS` rows,
    or without the columns, is refused whole (:class:`TagError`).
    """
    if len(data) > MAX_CSV_BYTES:
        raise TagError(f"{file_name}: larger than {MAX_CSV_BYTES} bytes; split it")
    rows = _csv_rows(data, file_name)
    result = ImportResult(rows=len(rows))
    wanted: dict[tuple[Kind, str], list[tuple[int, str]]] = {}
    for line, kind, key, tag in rows:
        try:
            wanted.setdefault((kind, normalise_tag(tag)), []).append((line, key))
        except TagError as exc:
            result.problems.append(f"line {line}: {exc}")
    source = f"csv:{file_name}"[:200]
    for (kind, tag), keyed in wanted.items():
        found = _ids_of(session, kind, [key for _, key in keyed])
        result.problems += [
            f"line {line}: no {kind} with the {_column(kind)} {key}"
            for line, key in keyed
            if key not in found
        ]
        ids = {found[key] for _, key in keyed if key in found}
        added = add_tag(session, kind, ids, tag, source=source, actor=actor)
        result.added += len(added.ids)
        result.unchanged += len(ids) - len(added.ids)
    return result


def _column(kind: Kind) -> str:
    return "email" if kind == "contact" else "domain"


def _csv_rows(data: bytes, file_name: str) -> list[tuple[int, Kind, str, str]]:
    """(line, kind, address or domain, tag) per non-empty row."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TagError(f"{file_name}: not UTF-8 text (save it as CSV UTF-8)") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
        _check_header(header, file_name)
        found: list[tuple[int, Kind, str, str]] = []
        for cells in reader:
            row = dict(zip(header, cells, strict=False))
            if not any(cell.strip() for cell in cells):
                continue
            if len(found) >= MAX_CSV_ROWS:
                raise TagError(f"{file_name}: more than {MAX_CSV_ROWS} rows; split it")
            found.append((reader.line_num, *_subject(row), row.get("tag", "")))
    except csv.Error as exc:
        raise TagError(
            f"{file_name}, line {reader.line_num}: not readable as CSV ({exc})"
        ) from None
    return found


def _check_header(header: Sequence[str], file_name: str) -> None:
    if "tag" not in header or not {"email", "domain"} & set(header):
        raise TagError(
            f"{file_name}: expected a `tag` column and an `email` or `domain` column "
            f"(found: {', '.join(header) or 'none'})"
        )


def _subject(row: dict[str, str]) -> tuple[Kind, str]:
    email = row.get("email", "").strip().lower()
    if email:
        return "contact", email
    return "company", row.get("domain", "").strip().rstrip(".").lower()


def _ids_of(session: Session, kind: Kind, keys: Sequence[str]) -> dict[str, int]:
    """Address -> contact id, or domain -> company id, for the keys that exist."""
    column, owner = (
        (ContactEmail.email, ContactEmail.contact_id)
        if kind == "contact"
        else (CompanyDomain.domain, CompanyDomain.company_id)
    )
    found: dict[str, int] = {}
    for part in chunks(sorted(set(keys))):
        found.update(
            (k, i) for k, i in session.execute(select(column, owner).where(column.in_(part)))
        )
    return found
