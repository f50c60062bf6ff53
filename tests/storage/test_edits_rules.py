"""The pure rules under people's edits: field text forms and the three-way decision."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import fields, merge
from storage.edits import decide

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("name", "given_value", "stored"),
    [
        ("title", "  CTO ", "CTO"),
        ("title", "   ", None),
        ("title", None, None),
        ("birthday", "1984-02-29", "1984-02-29"),
        ("birthday", "19840229", "1984-02-29"),
        ("do_not_contact", "Yes", "true"),
        ("do_not_contact", "off", "false"),
        ("do_not_contact", "", "false"),
        ("company", "Acme.Example.", "acme.example"),
        ("extra.tier", " gold ", "gold"),
        ("address", "1 Main St\nSpringfield", "1 Main St\nSpringfield"),
    ],
    ids=[
        "text-stripped",
        "blank-clears",
        "none-clears",
        "iso-date",
        "basic-iso-date",
        "yes-is-true",
        "off-is-false",
        "blank-flag-is-false",
        "domain-lower-cased",
        "extra-key",
        "multi-line-address",
    ],
)
def test_values_are_stored_in_one_canonical_form(
    name: str, given_value: str | None, stored: str | None
) -> None:
    assert fields.parse(name, given_value) == stored
    assert fields.parse(name, stored) == stored


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("shoe_size", "9", "unknown field"),
        ("extra.", "x", "unknown field"),
        ("birthday", "29/02/1984", "not an ISO date"),
        ("do_not_contact", "maybe", "not true or false"),
        ("company", "Acme Inc", "not a domain"),
        ("preferred_channel", "x" * 51, "longer than 50 characters"),
    ],
    ids=["unknown", "extra-without-key", "date", "flag", "company-name", "too-long"],
)
def test_a_bad_field_or_value_is_refused_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(fields.FieldError, match=message) as raised:
        fields.parse(name, value)
    assert raised.value.field == name
    assert str(raised.value).startswith(f"{name}: ")


def obs(field: str, value: str, source: str, day: int, manual: bool) -> merge.Observation:
    return merge.Observation(field, value, source, AT.replace(day=day), manual)


@pytest.mark.parametrize(
    ("facts", "phone", "manual"),
    [
        (
            [obs("phone", "+2", "gmail", 1, False), obs("phone", "+1", "imap", 2, False)],
            "+1",
            False,
        ),
        ([obs("phone", "+1", "gmail", 3, False), obs("phone", "+9", "ann", 1, True)], "+9", True),
        ([obs("phone", "+9", "ann", 1, True), obs("phone", "+1", "ann", 2, True)], "+1", True),
        ([obs("phone", "+1", "gmail", 3, False), obs("phone", "", "ann", 2, True)], None, True),
    ],
    ids=["first-known-number", "a-person-beats-the-agent", "the-latest-person-wins", "cleared"],
)
def test_the_primary_phone(facts: list[merge.Observation], phone: str | None, manual: bool) -> None:
    derived = fields.derive(facts)["phone"]
    assert (derived.value, derived.manual) == (phone, manual)


@pytest.mark.parametrize(
    ("base", "mine", "current", "manual", "accepted", "conflicts", "kept"),
    [
        ("A", "B", "A", False, "B", None, False),
        ("A", "B", "C", False, "B", None, False),
        ("A", "B", "C", True, None, ("A", "B", "C"), False),
        ("A", "B", "B", True, "B", None, False),
        ("A", "A", "C", True, None, None, True),
        ("A", None, "C", True, None, ("A", None, "C"), False),
        (None, "B", None, True, "B", None, False),
    ],
    ids=[
        "nobody-else-changed-it",
        "the-agent-changed-it",
        "a-person-changed-it-differently",
        "a-person-changed-it-the-same-way",
        "the-edit-repeats-the-base",
        "a-clear-against-a-change",
        "a-person-cleared-it-before",
    ],
)
def test_the_three_way_decision(
    base: str | None,
    mine: str | None,
    current: str | None,
    manual: bool,
    accepted: str | None,
    conflicts: tuple[str | None, ...] | None,
    kept: bool,
) -> None:
    decision = decide(
        {"title": base}, {"title": mine}, {"title": current}, ["title"] if manual else []
    )
    assert ("title" in decision.accepted) == (conflicts is None and not kept)
    if "title" in decision.accepted:
        assert decision.accepted["title"] == accepted
    assert [(c.base, c.mine, c.theirs) for c in decision.conflicts] == (
        [conflicts] if conflicts else []
    )
    assert decision.kept == (("title",) if kept else ())


_values = st.one_of(st.none(), st.sampled_from(["A", "B", "C"]))
_names = st.sampled_from(["title", "owner", "phone"])


@given(
    base=st.dictionaries(_names, _values),
    mine=st.dictionaries(_names, _values, min_size=1),
    current=st.dictionaries(_names, _values),
    manual=st.sets(_names),
)
def test_no_edit_is_lost_silently(
    base: dict[str, str | None],
    mine: dict[str, str | None],
    current: dict[str, str | None],
    manual: set[str],
) -> None:
    decision = decide(base, mine, current, manual)
    conflicted = {c.field: c for c in decision.conflicts}
    for name, value in mine.items():
        outcomes = [name in decision.accepted, name in conflicted, name in decision.kept]
        assert outcomes.count(True) == 1
        if name not in manual:
            assert decision.accepted.get(name, "missing") == value  # a person beats the agent
        if name in decision.kept:
            assert value == base.get(name)  # only an unchanged value yields
        if name in conflicted:
            assert (conflicted[name].mine, conflicted[name].theirs) == (value, current.get(name))
