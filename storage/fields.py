"""Contact fields: which exist, their text form, and the column each merged value decides.

Every fact about a contact travels as text (an observation's ``value``),
whoever states it: a connector, a person on the command line, a CSV import.
This module is the one place that maps that text onto the ``contacts``
columns, so the agent's merge and people's edits derive a contact the same
way and neither undoes the other.

=================  ======================================================
field              text form
=================  ======================================================
display_name,      free text (``address`` may span lines); at most the
first_name,        column's length
last_name, title,
address,
preferred_channel,
owner, lead_source
phone              a number; multi-valued (DESIGN rule 3): every number
                   stays an observation, and the ``phone`` column holds
                   the primary one -- the latest a person set, else the
                   first known
birthday           an ISO date, ``1984-02-29``
do_not_contact     ``true`` or ``false`` (also yes/no, 1/0, on/off);
                   clearing it means ``false``
company            the company's domain: names are not unique, domains
                   are, and a company may own several (any of them names
                   it)
extra.KEY          a text value under ``KEY`` in the ``extra`` JSON object
=================  ======================================================

A blank value from a person clears the field (``storage.merge``); a field
without any observation is left as it is, so columns written before
observations existed keep their value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy.orm import object_session

from storage import merge
from storage.models import Company, Contact

TEXT_FIELDS = (
    "display_name",
    "first_name",
    "last_name",
    "title",
    "address",
    "preferred_channel",
    "owner",
    "lead_source",
)
FIELDS = (*TEXT_FIELDS, "phone", "birthday", "do_not_contact", "company")
"""Every field a person may set, in display order; ``extra.KEY`` comes on top."""

EXTRA = "extra."
_MAX_FIELD_NAME = 100
_BOOLEANS = {
    "true": True, "yes": True, "1": True, "on": True,
    "false": False, "no": False, "0": False, "off": False,
}  # fmt: skip
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_UNUSABLE = object()


class FieldError(ValueError):
    """A field name or value a person gave that crm-sync cannot store; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def is_field(name: str) -> bool:
    return name in FIELDS or (name.startswith(EXTRA) and bool(name[len(EXTRA) :].strip()))


def check_name(name: str) -> str:
    """``name`` if a person may set it; else a FieldError that lists what may be set."""
    if not is_field(name):
        raise FieldError(name, f"unknown field (settable: {', '.join(FIELDS)}, extra.KEY)")
    if len(name) > _MAX_FIELD_NAME:
        raise FieldError(name, f"field name longer than {_MAX_FIELD_NAME} characters")
    return name


def parse(name: str, value: str | None) -> str | None:
    """The canonical text of a person's ``value`` for ``name``; ``None`` clears the field.

    Canonical text is what observations store, so the same fact typed two
    ways (``Yes``, ``true``) is one observation and never a conflict.
    Idempotent: ``parse(name, parse(name, v)) == parse(name, v)``.
    """
    check_name(name)
    text = (value or "").strip()
    if name == "do_not_contact":
        flag = _BOOLEANS.get(text.lower() or "false")
        if flag is None:
            raise FieldError(name, f"{value!r} is not true or false")
        return "true" if flag else "false"
    if not text:
        return None
    if name == "birthday":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise FieldError(name, f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
    if name == "company":
        domain = text.lower().rstrip(".")
        if not _DOMAIN.match(domain):
            raise FieldError(name, f"{value!r} is not a domain (a company is named by its domain)")
        return domain
    limit = _max_length(name)
    if limit is not None and len(text) > limit:
        raise FieldError(name, f"longer than {limit} characters")
    return text


def _max_length(name: str) -> int | None:
    if name.startswith(EXTRA):
        return None
    length = getattr(Contact.__table__.c[name].type, "length", None)
    return length if isinstance(length, int) else None


def derive(observations: Iterable[merge.Observation]) -> dict[str, merge.FieldValue]:
    """Each settable field's merged value and provenance; unobserved fields are absent."""
    facts = list(observations)
    merged = merge.merge_contact(facts)
    derived = {name: value for name, value in merged.single.items() if is_field(name)}
    phone = _primary_phone(facts)
    if phone is not None:
        derived["phone"] = phone
    return derived


def _primary_phone(facts: Iterable[merge.Observation]) -> merge.FieldValue | None:
    """The latest number a person set (or cleared), else the first known one.

    Numbers accumulate (rule 3), so the column shows one of them; a person's
    choice beats the agent's like any manual value (rule 1).
    """
    phones = [o for o in facts if o.field == "phone"]
    manual = [o for o in phones if o.manual]
    if manual:
        chosen = max(manual, key=_rank)
        value = chosen.value.strip() or None
        return merge.FieldValue(value, chosen.source, chosen.observed_at, True, None)
    known = merge.merge_values("phone", phones)
    if not known:
        return None
    latest = max((o for o in phones if o.value == known[0]), key=_rank)
    return merge.FieldValue(known[0], latest.source, latest.observed_at, False, None)


def _rank(observation: merge.Observation) -> tuple[Any, ...]:
    return (observation.observed_at, observation.source, observation.value)


def read(contact: Contact, name: str) -> str | None:
    """The text form of what ``contact`` holds for ``name`` now."""
    if name == "company":
        return _company_domain(contact)
    if name.startswith(EXTRA):
        held = (contact.extra or {}).get(name[len(EXTRA) :])
        if held is None:
            return None
        return held if isinstance(held, str) else json.dumps(held, sort_keys=True)
    value = getattr(contact, name)
    if name == "do_not_contact":
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return None if value is None else str(value)


def current(contact: Contact) -> dict[str, str | None]:
    """Every settable field of ``contact`` (and each ``extra`` key) in text form."""
    values = {name: read(contact, name) for name in FIELDS}
    values.update({EXTRA + key: read(contact, EXTRA + key) for key in sorted(contact.extra or {})})
    return values


def _company_domain(contact: Contact) -> str | None:
    if contact.company_id is None:
        return None
    company = contact.company
    if company is None or company.id != contact.company_id:
        session = object_session(contact)
        company = session.get(Company, contact.company_id) if session is not None else None
    return company.domain if company is not None else None


def assign(contact: Contact, name: str, value: str | None, company_ids: Mapping[str, int]) -> bool:
    """Set the column behind ``name`` from its text; whether anything changed.

    Text that does not fit its column is skipped rather than stored: an
    automatic birthday that is no date, a company domain no company owns.
    ``company_ids`` maps domains to company ids for the ``company`` field.
    """
    column_value = _column_value(name, value, company_ids)
    if column_value is _UNUSABLE:
        return False
    if name.startswith(EXTRA):
        return _assign_extra(contact, name[len(EXTRA) :], column_value)
    attribute = "company_id" if name == "company" else name
    if getattr(contact, attribute) == column_value:
        return False
    setattr(contact, attribute, column_value)
    return True


def _column_value(name: str, text: str | None, company_ids: Mapping[str, int]) -> object:
    if name == "do_not_contact":
        flag = _BOOLEANS.get((text or "false").strip().lower())
        return _UNUSABLE if flag is None else flag
    if text is None:
        return None
    if name == "birthday":
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            return _UNUSABLE
    if name == "company":
        return company_ids.get(text, _UNUSABLE)
    return text


def _assign_extra(contact: Contact, key: str, value: object) -> bool:
    extra = dict(contact.extra or {})
    if value is None:
        if key not in extra:
            return False
        del extra[key]
    elif extra.get(key) == value:
        return False
    else:
        extra[key] = value
    contact.extra = extra
    return True
