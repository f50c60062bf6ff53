"""The conflict-resolution rules: a table per rule, then the invariants as properties."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.merge import (
    EMPTY_STATE,
    MULTI_VALUED,
    UNKNOWN,
    FieldConflict,
    FieldValue,
    MergedContact,
    Observation,
    fold,
    merge_contact,
    merge_field,
    merge_values,
    resolve,
    three_way,
)

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def obs(
    value: str,
    hours: int = 0,
    source: str = "alice-gmail",
    *,
    manual: bool = False,
    field: str = "title",
) -> Observation:
    return Observation(
        field=field, value=value, source=source, observed_at=at(hours), manual=manual
    )


def auto_value(o: Observation) -> FieldValue:
    return FieldValue(o.value, o.source, o.observed_at, manual=False, suggestion=None)


def manual_value(o: Observation, suggestion: Observation | None = None) -> FieldValue:
    value = o.value if o.value.strip() else None
    return FieldValue(value, o.source, o.observed_at, manual=True, suggestion=suggestion)


# -- rule 2: automatic values, latest wins, fixed tie-break ------------------------------

OLD_CTO = obs("CTO", 1)
NEW_CEO = obs("CEO", 2)
TIE_A = obs("VP", 1, "alice-gmail")
TIE_B = obs("CFO", 1, "bob-imap")
TIE_B_Z = obs("Zookeeper", 1, "bob-imap")
BLANK = obs("", 3)
SPACES = obs("  \t", 3)

AUTOMATIC_CASES = [
    ([], UNKNOWN),
    ([OLD_CTO], auto_value(OLD_CTO)),
    ([OLD_CTO, NEW_CEO], auto_value(NEW_CEO)),
    ([NEW_CEO, OLD_CTO], auto_value(NEW_CEO)),
    ([TIE_A, TIE_B], auto_value(TIE_B)),
    ([TIE_B, TIE_A], auto_value(TIE_B)),
    ([TIE_B, TIE_B_Z, TIE_A], auto_value(TIE_B_Z)),
    ([OLD_CTO, BLANK], auto_value(OLD_CTO)),
    ([OLD_CTO, SPACES], auto_value(OLD_CTO)),
    ([BLANK, SPACES], UNKNOWN),
]
AUTOMATIC_IDS = [
    "nothing-known",
    "one-value",
    "newer-wins",
    "newer-wins-whatever-the-arrival-order",
    "same-instant-greatest-source-wins",
    "same-instant-tie-break-ignores-order",
    "same-instant-same-source-greatest-value-wins",
    "empty-value-does-not-blank-the-field",
    "whitespace-value-does-not-blank-the-field",
    "only-blank-values-means-unknown",
]


@pytest.mark.parametrize(("observations", "expected"), AUTOMATIC_CASES, ids=AUTOMATIC_IDS)
def test_automatic_values(observations: list[Observation], expected: FieldValue) -> None:
    assert merge_field("title", observations) == expected


# -- rule 1: manual values beat automatic ones, newer differing ones are suggestions ------

EDIT = obs("Head of Sales", 2, "dana", manual=True)
LATER_EDIT = obs("VP Sales", 4, "erin", manual=True)
SAME_INSTANT_EDIT = obs("Sales lead", 2, "zoe", manual=True)
CLEARED = obs("", 3, "dana", manual=True)
CLEARED_SPACES = obs("   ", 3, "dana", manual=True)
AUTO_BEFORE = obs("Sales Rep", 1)
AUTO_SAME_INSTANT = obs("Sales Rep", 2)
AUTO_AFTER = obs("CRO", 3)
AUTO_LATEST = obs("COO", 5, "bob-imap")
AUTO_AFTER_AGREES = obs("Head of Sales", 5, "bob-imap")

MANUAL_CASES = [
    ([EDIT], manual_value(EDIT)),
    ([AUTO_BEFORE, EDIT], manual_value(EDIT)),
    ([EDIT, AUTO_AFTER], manual_value(EDIT, AUTO_AFTER)),
    ([AUTO_SAME_INSTANT, EDIT], manual_value(EDIT)),
    ([EDIT, AUTO_AFTER, AUTO_LATEST], manual_value(EDIT, AUTO_LATEST)),
    ([EDIT, AUTO_AFTER, AUTO_AFTER_AGREES], manual_value(EDIT)),
    ([EDIT, BLANK], manual_value(EDIT)),
    ([LATER_EDIT, EDIT], manual_value(LATER_EDIT)),
    ([EDIT, LATER_EDIT, AUTO_AFTER], manual_value(LATER_EDIT)),
    ([SAME_INSTANT_EDIT, EDIT], manual_value(SAME_INSTANT_EDIT)),
    ([EDIT, CLEARED], manual_value(CLEARED)),
    ([EDIT, CLEARED_SPACES], manual_value(CLEARED_SPACES)),
    ([CLEARED, LATER_EDIT], manual_value(LATER_EDIT)),
    ([CLEARED, AUTO_AFTER], manual_value(CLEARED)),
    ([CLEARED, AUTO_LATEST], manual_value(CLEARED, AUTO_LATEST)),
]
MANUAL_IDS = [
    "manual-alone",
    "manual-beats-older-automatic",
    "newer-different-automatic-is-a-suggestion",
    "automatic-at-the-same-instant-is-not-newer",
    "suggestion-is-the-latest-automatic",
    "latest-automatic-agrees-so-nothing-to-suggest",
    "blank-automatic-is-no-suggestion",
    "later-manual-edit-replaces-earlier",
    "automatic-older-than-the-latest-edit-is-no-suggestion",
    "same-instant-edits-greatest-user-wins",
    "manual-empty-clears-the-field",
    "manual-whitespace-clears-the-field",
    "later-edit-replaces-a-clear",
    "clear-beats-automatic-at-the-same-instant",
    "newer-automatic-after-a-clear-is-a-suggestion",
]


@pytest.mark.parametrize(("observations", "expected"), MANUAL_CASES, ids=MANUAL_IDS)
def test_manual_values(observations: list[Observation], expected: FieldValue) -> None:
    assert merge_field("title", observations) == expected


def test_equal_instants_in_different_zones_are_a_tie() -> None:
    paris = timezone(timedelta(hours=2))
    a = Observation("title", "CTO", "alice-gmail", T0, manual=False)
    b = Observation("title", "CEO", "bob-imap", T0.astimezone(paris), manual=False)
    assert merge_field("title", [b, a]) == merge_field("title", [a, b]) == auto_value(b)
    assert b.observed_at.tzinfo is UTC


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Observation("title", "CTO", "alice-gmail", datetime(2024, 5, 1), manual=False)


def test_merge_field_ignores_other_fields() -> None:
    other = obs("Ada", 9, field="first_name")
    assert merge_field("title", [OLD_CTO, other]) == auto_value(OLD_CTO)


@pytest.mark.parametrize(
    ("function", "field"),
    [(merge_field, "email"), (merge_values, "title")],
    ids=["merge-field-of-multi-valued", "merge-values-of-single-valued"],
)
def test_wrong_kind_of_field_is_refused(
    function: Callable[[str, list[Observation]], object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        function(field, [])


# -- rule 3: multi-valued fields are unions ----------------------------------------------

MULTI_CASES = [
    ([], ()),
    (
        [obs("b@x.com", 1, field="email"), obs("a@x.com", 2, "bob-imap", field="email")],
        ("a@x.com", "b@x.com"),
    ),
    ([obs("a@x.com", 1, field="email"), obs("a@x.com", 5, field="email")], ("a@x.com",)),
    ([obs("a@x.com", 1, field="email"), obs(" ", 5, field="email")], ("a@x.com",)),
    (
        [obs("a@x.com", 1, field="email"), obs("c@x.com", 5, "dana", manual=True, field="email")],
        ("a@x.com", "c@x.com"),
    ),
    (
        [obs("a@x.com", 1, field="email"), obs("", 5, "dana", manual=True, field="email")],
        ("a@x.com",),
    ),
]
MULTI_IDS = [
    "nothing-known",
    "union-across-sources-sorted",
    "duplicates-collapse",
    "blank-ignored",
    "manual-adds-and-removes-nothing",
    "manual-blank-removes-nothing",
]


@pytest.mark.parametrize(("observations", "expected"), MULTI_CASES, ids=MULTI_IDS)
def test_multi_valued_union(observations: list[Observation], expected: tuple[str, ...]) -> None:
    assert merge_values("email", observations) == expected


def test_merge_contact_splits_single_and_multi_valued_fields() -> None:
    phone = obs("+1 555 0100", 1, field="phone")
    linkedin = obs("in/ada", 1, field="extra.linkedin")
    merged = merge_contact([OLD_CTO, NEW_CEO, EDIT, phone, linkedin, BLANK])
    assert merged == MergedContact(
        single={"extra.linkedin": auto_value(linkedin), "title": manual_value(EDIT)},
        multi={"phone": ("+1 555 0100",)},
    )


def test_fold_does_not_touch_its_input_state() -> None:
    first = fold(EMPTY_STATE, [OLD_CTO, obs("a@x.com", field="email")])
    fold(first, [NEW_CEO, obs("b@x.com", field="email")])
    assert resolve(first) == merge_contact([OLD_CTO, obs("a@x.com", field="email")])


# -- rule 4: concurrent human edits ------------------------------------------------------

THREE_WAY_CASES = [
    ({"title": "CTO"}, {"title": "CTO"}, {"title": "CTO"}, {"title": "CTO"}, ()),
    ({"title": "CTO"}, {"title": "CEO"}, {"title": "CTO"}, {"title": "CEO"}, ()),
    ({"title": "CTO"}, {"title": "CTO"}, {"title": "CEO"}, {"title": "CEO"}, ()),
    ({"title": "CTO"}, {"title": "CEO"}, {"title": "CEO"}, {"title": "CEO"}, ()),
    (
        {"title": "CTO"},
        {"title": "CEO"},
        {"title": "CFO"},
        {"title": "CFO"},
        (FieldConflict("title", "CTO", "CEO", "CFO"),),
    ),
    ({"title": "CTO"}, {"title": None}, {"title": "CTO"}, {"title": None}, ()),
    ({"title": "CTO"}, {"title": ""}, {"title": None}, {"title": None}, ()),
    ({"title": "CTO"}, {}, {"title": "CTO"}, {"title": None}, ()),
    (
        {"title": "CTO"},
        {"title": " "},
        {"title": "CFO"},
        {"title": "CFO"},
        (FieldConflict("title", "CTO", None, "CFO"),),
    ),
    ({}, {"extra.x": "1"}, {}, {"extra.x": "1"}, ()),
    ({}, {}, {"extra.x": "1"}, {"extra.x": "1"}, ()),
    (
        {},
        {"extra.x": "1"},
        {"extra.x": "2"},
        {"extra.x": "2"},
        (FieldConflict("extra.x", None, "1", "2"),),
    ),
    (
        {"title": "CTO", "owner": "dana", "birthday": "1970-01-01"},
        {"title": "CEO", "owner": "erin", "birthday": "1970-01-01"},
        {"title": "CFO", "owner": "dana", "birthday": "1971-01-01"},
        {"title": "CFO", "owner": "erin", "birthday": "1971-01-01"},
        (FieldConflict("title", "CTO", "CEO", "CFO"),),
    ),
    (
        {"title": "CTO", "owner": "dana"},
        {"title": "CEO", "owner": "erin"},
        {"title": "CFO", "owner": "fred"},
        {"owner": "fred", "title": "CFO"},
        (
            FieldConflict("owner", "dana", "erin", "fred"),
            FieldConflict("title", "CTO", "CEO", "CFO"),
        ),
    ),
]
THREE_WAY_IDS = [
    "nobody-changed",
    "only-mine-changed",
    "only-theirs-changed",
    "both-changed-alike",
    "both-changed-differently-conflict-keeps-theirs",
    "mine-cleared",
    "cleared-two-ways-is-no-conflict",
    "missing-key-means-cleared",
    "mine-cleared-theirs-changed-conflict",
    "field-added-by-mine",
    "field-added-by-theirs",
    "field-added-differently-conflict",
    "disjoint-edits-combine",
    "conflicts-in-field-order",
]


@pytest.mark.parametrize(
    ("base", "mine", "theirs", "merged", "conflicts"), THREE_WAY_CASES, ids=THREE_WAY_IDS
)
def test_three_way(
    base: dict[str, str | None],
    mine: dict[str, str | None],
    theirs: dict[str, str | None],
    merged: dict[str, str | None],
    conflicts: tuple[FieldConflict, ...],
) -> None:
    result = three_way(base, mine, theirs)
    assert result.merged == merged
    assert result.conflicts == conflicts


# -- properties --------------------------------------------------------------------------

FIELDS = ("title", "display_name", "extra.linkedin", "email", "phone")
SOURCES = ("alice-gmail", "bob-imap", "dana")
VALUES = ("", " ", "A", "B", "C")

observations = st.builds(
    Observation,
    field=st.sampled_from(FIELDS),
    value=st.sampled_from(VALUES),
    source=st.sampled_from(SOURCES),
    observed_at=st.sampled_from([at(h) for h in range(4)]),
    manual=st.booleans(),
)
histories = st.lists(observations, max_size=24)
automatic_observations = observations.map(lambda o: replace(o, manual=False))
fast = settings(deadline=None, max_examples=300)


def _batches(draw: st.DataObject, items: list[Observation]) -> list[list[Observation]]:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(items)), max_size=6), label="cuts"))
    bounds = [0, *cuts, len(items)]
    return [items[a:b] for a, b in pairwise(bounds)]


def _automatic_before(name: str, when: datetime) -> st.SearchStrategy[Observation]:
    return st.builds(
        Observation,
        field=st.just(name),
        value=st.sampled_from(VALUES),
        source=st.sampled_from(SOURCES),
        observed_at=st.integers(1, 5).map(lambda hours: when - timedelta(hours=hours)),
        manual=st.just(False),
    )


def _winner(value: FieldValue) -> tuple[str | None, str | None, datetime | None, bool]:
    return (value.value, value.source, value.observed_at, value.manual)


@fast
@given(histories, st.data())
def test_order_does_not_matter(history: list[Observation], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(history), label="shuffled")
    assert merge_contact(shuffled) == merge_contact(history)


@fast
@given(histories, st.data())
def test_cumulative_prefixes_agree_with_fold(
    history: list[Observation], data: st.DataObject
) -> None:
    state, seen = EMPTY_STATE, list[Observation]()
    for batch in _batches(data, history):
        state, seen = fold(state, batch), [*seen, *batch]
        assert resolve(state) == merge_contact(seen)
    assert resolve(state) == merge_contact(history)


@fast
@given(histories, st.data())
def test_fold_over_batches_in_any_order_with_redelivery_is_one_shot(
    history: list[Observation], data: st.DataObject
) -> None:
    batches = _batches(data, history)
    redelivered = data.draw(st.lists(st.sampled_from(batches), max_size=3), label="again")
    arrival = data.draw(st.permutations([*batches, *redelivered]), label="arrival")
    state = EMPTY_STATE
    for batch in arrival:
        state = fold(state, batch)
    assert state == fold(EMPTY_STATE, history)
    assert resolve(state) == merge_contact(history)


@fast
@given(histories)
def test_no_observation_is_lost(history: list[Observation]) -> None:
    merged = merge_contact(history)
    for o in history:
        if o.field in MULTI_VALUED:
            assert o.value in merged.multi.get(o.field, ()) or not o.value.strip()
        elif o.manual:
            winner = merged.single[o.field]
            superseding = [
                m
                for m in history
                if m.manual
                and m.field == o.field
                and (m.observed_at, m.source, m.value) > (o.observed_at, o.source, o.value)
            ]
            assert superseding or _winner(winner) == _winner(manual_value(o))


@fast
@given(histories)
def test_merge_field_agrees_with_merge_contact(history: list[Observation]) -> None:
    merged = merge_contact(history)
    for name in FIELDS:
        if name in MULTI_VALUED:
            assert merge_values(name, history) == merged.multi.get(name, ())
        else:
            assert merge_field(name, history) == merged.single.get(name, UNKNOWN)


@fast
@given(histories, st.lists(automatic_observations, max_size=12))
def test_manual_winner_survives_any_automatic_observation(
    history: list[Observation], more: list[Observation]
) -> None:
    before = merge_contact(history).single
    after = merge_contact([*history, *more]).single
    for name, value in before.items():
        if value.manual:
            assert _winner(after[name]) == _winner(value)


@fast
@given(histories)
def test_suggestion_is_what_the_agent_alone_would_choose(history: list[Observation]) -> None:
    automatic_only = merge_contact([o for o in history if not o.manual]).single
    for name, value in merge_contact(history).single.items():
        if value.suggestion is not None:
            assert value.manual
            assert value.observed_at is not None
            assert value.suggestion.observed_at > value.observed_at
            assert value.suggestion.value != value.value
            assert automatic_only[name].value == value.suggestion.value


@fast
@given(histories, st.data())
def test_backfill_older_than_the_winner_changes_nothing(
    history: list[Observation], data: st.DataObject
) -> None:
    before = merge_contact(history)
    backfill = []
    for name, value in before.single.items():
        assert value.observed_at is not None
        older = st.lists(_automatic_before(name, value.observed_at), max_size=4)
        backfill.extend(data.draw(older, label=f"backfill {name}"))
    assert merge_contact([*history, *backfill]).single == before.single


values_or_none = st.one_of(st.none(), st.sampled_from(VALUES))
versions = st.dictionaries(st.sampled_from(("title", "owner", "extra.x")), values_or_none)


def _present(value: str | None) -> str | None:
    return value if value and value.strip() else None


@fast
@given(versions, versions, versions)
def test_three_way_loses_nothing(
    base: dict[str, str | None], mine: dict[str, str | None], theirs: dict[str, str | None]
) -> None:
    result = three_way(base, mine, theirs)
    conflicting = {c.field: c for c in result.conflicts}
    for name, merged in result.merged.items():
        b, m, t = (_present(side.get(name)) for side in (base, mine, theirs))
        assert merged in (m, t)
        if name in conflicting:
            assert conflicting[name] == FieldConflict(name, b, m, t)
            assert merged == t
        else:
            assert m in (b, merged)
            assert t in (b, merged)


@fast
@given(versions, versions, versions)
def test_three_way_conflicts_are_symmetric(
    base: dict[str, str | None], mine: dict[str, str | None], theirs: dict[str, str | None]
) -> None:
    forward, backward = three_way(base, mine, theirs), three_way(base, theirs, mine)
    assert [c.field for c in forward.conflicts] == [c.field for c in backward.conflicts]
    agreed = {
        k: v for k, v in forward.merged.items() if k not in {c.field for c in forward.conflicts}
    }
    assert agreed.items() <= backward.merged.items()


@fast
@given(versions, versions)
def test_three_way_without_my_change_is_theirs(
    base: dict[str, str | None], theirs: dict[str, str | None]
) -> None:
    result = three_way(base, base, theirs)
    assert result.conflicts == ()
    assert {k: v for k, v in result.merged.items() if v is not None} == {
        k: v for k, v in theirs.items() if _present(v) is not None
    }
