"""Conflict resolution: a contact's current facts, derived from its observations.

Every fact about a contact arrives as an :class:`Observation` (field, value,
source, ``observed_at``, manual?). Nothing here reads or writes a database:
the storage layer loads observations (or the small :class:`ContactState` it
kept from last time), calls these functions and writes the result. Because a
field's value is a pure function of the *set* of its observations, several
agents and people can record facts in any order and still agree.

Order. Observations of one field are ranked by ``(observed_at, source,
value)``; the greatest wins. ``observed_at`` is when the fact was true (the
email's date), so a late backfill of old mail never beats newer facts; equal
instants fall back to the greatest source name, then the greatest value,
which makes every result deterministic.

Single-valued fields (everything outside :data:`MULTI_VALUED`, including any
``extra.*`` key). Let M be the greatest manual observation and A the greatest
automatic one whose value is not blank:

=====  ===========================================  ==========  ==========
M      A                                            value       suggestion
=====  ===========================================  ==========  ==========
none   none                                         unknown     none
none   A                                            A.value     none
M      none, or not newer than M, or same value     M.value     none
M      strictly newer than M, different value       M.value     A
=====  ===========================================  ==========  ==========

* A blank (empty or whitespace-only) automatic value is no evidence at all:
  an email without a display name must not blank a name.
* A blank manual value is a person clearing the field: it wins like any
  manual value, as the explicit value ``None``.
* The suggestion is what the agent alone would have chosen, shown only when
  it is newer than the person's edit and says something else; when the
  newest automatic value agrees with the person, older disagreeing ones are
  outdated evidence and are not suggested.

Multi-valued fields (:data:`MULTI_VALUED`): the union of every non-blank
value, sorted. The merge never removes one; erasing an address is an explicit
operation of the storage layer, not an outcome of merging.

Incremental form. :func:`fold` keeps, per field, only M and A (and the value
sets), so the storage layer need not reload every observation of a contact
for every email: ``resolve(fold(fold(EMPTY_STATE, a), b)) ==
merge_contact([*a, *b])`` for any batches, in any order, even repeated.

Concurrent human edits (DESIGN rule 4) are :func:`three_way`: the classic
three-way merge against the common base version, where a field both sides
changed differently becomes a :class:`FieldConflict` instead of a silent
overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

MULTI_VALUED = frozenset({"email", "phone"})
"""Fields whose facts accumulate (DESIGN rule 3); every other field holds one value."""


@dataclass(frozen=True)
class Observation:
    """One fact about a contact, with its provenance.

    ``source`` is a connector name for automatic observations and a user name
    for manual ones. ``observed_at`` must be timezone-aware; it is kept in UTC
    so that equal instants are equal observations whatever zone they came in.
    """

    field: str
    value: str
    source: str
    observed_at: datetime
    manual: bool

    def __post_init__(self) -> None:
        if self.observed_at.utcoffset() is None:
            raise ValueError(f"observed_at must be timezone-aware: {self.observed_at!r}")
        object.__setattr__(self, "observed_at", self.observed_at.astimezone(UTC))


@dataclass(frozen=True)
class FieldValue:
    """A single-valued field's current value and where it came from.

    ``value`` is ``None`` when nothing is known or a person cleared the field
    (then ``manual`` is true). ``suggestion`` is a newer automatic observation
    that disagrees with the manual value, for a person to accept or ignore.
    """

    value: str | None
    source: str | None
    observed_at: datetime | None
    manual: bool
    suggestion: Observation | None


UNKNOWN = FieldValue(value=None, source=None, observed_at=None, manual=False, suggestion=None)
"""The value of a field without any manual or non-blank automatic observation."""


@dataclass(frozen=True)
class MergedContact:
    """A contact's derived facts.

    ``single`` maps each single-valued field that has a value (or was
    cleared by a person) to its :class:`FieldValue`; ``multi`` maps each
    multi-valued field to its sorted values. Fields with no usable
    observation are absent: ``single.get(name, UNKNOWN)``.
    """

    single: Mapping[str, FieldValue]
    multi: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class ContactState:
    """Everything the merge needs to remember between batches.

    Per single-valued field only the greatest manual and the greatest
    non-blank automatic observation matter; per multi-valued field only the
    set of values. The storage layer may persist these instead of reloading
    a contact's whole history for every new email.
    """

    manual: Mapping[str, Observation]
    automatic: Mapping[str, Observation]
    values: Mapping[str, frozenset[str]]


EMPTY_STATE = ContactState(manual={}, automatic={}, values={})


@dataclass(frozen=True)
class FieldConflict:
    """A field that two people changed differently from the same base version."""

    field: str
    base: str | None
    mine: str | None
    theirs: str | None


@dataclass(frozen=True)
class ThreeWayResult:
    """The merged fields (``theirs`` where they conflict) and every conflict, by field."""

    merged: dict[str, str | None]
    conflicts: tuple[FieldConflict, ...]


def _is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _present(value: str | None) -> str | None:
    return None if _is_blank(value) else value


def _rank(observation: Observation) -> tuple[datetime, str, str]:
    return (observation.observed_at, observation.source, observation.value)


def _greatest(current: Observation | None, candidate: Observation) -> Observation:
    if current is None or _rank(candidate) > _rank(current):
        return candidate
    return current


def _suggestion(manual: Observation, automatic: Observation | None) -> Observation | None:
    """The automatic winner, if it is newer than the person's edit and disagrees with it."""
    if automatic is None or automatic.observed_at <= manual.observed_at:
        return None
    return None if automatic.value == _present(manual.value) else automatic


def _resolve_field(manual: Observation | None, automatic: Observation | None) -> FieldValue:
    """Rules 1 and 2: a manual value beats every automatic one; else the latest automatic."""
    if manual is not None:
        return FieldValue(
            value=_present(manual.value),
            source=manual.source,
            observed_at=manual.observed_at,
            manual=True,
            suggestion=_suggestion(manual, automatic),
        )
    if automatic is not None:
        return FieldValue(
            value=automatic.value,
            source=automatic.source,
            observed_at=automatic.observed_at,
            manual=False,
            suggestion=None,
        )
    return UNKNOWN


def fold(state: ContactState, batch: Iterable[Observation]) -> ContactState:
    """Add a batch of observations to a state; the input state is left untouched.

    ``fold`` is commutative, associative and idempotent in its batches, so
    re-delivering a batch after a crash, or two agents' batches arriving in
    either order, ends in the same state.
    """
    manual = dict(state.manual)
    automatic = dict(state.automatic)
    values = {name: set(vals) for name, vals in state.values.items()}
    for observation in batch:
        name = observation.field
        if name in MULTI_VALUED:
            if not _is_blank(observation.value):
                values.setdefault(name, set()).add(observation.value)
        elif observation.manual:
            manual[name] = _greatest(manual.get(name), observation)
        elif not _is_blank(observation.value):
            automatic[name] = _greatest(automatic.get(name), observation)
    return ContactState(
        manual=manual,
        automatic=automatic,
        values={name: frozenset(vals) for name, vals in values.items()},
    )


def resolve(state: ContactState) -> MergedContact:
    """The contact's facts as the decision table in the module docstring defines them."""
    names = sorted(state.manual.keys() | state.automatic.keys())
    return MergedContact(
        single={
            name: _resolve_field(state.manual.get(name), state.automatic.get(name))
            for name in names
        },
        multi={name: tuple(sorted(state.values[name])) for name in sorted(state.values)},
    )


def merge_contact(observations: Iterable[Observation]) -> MergedContact:
    """All of a contact's facts from all of its observations, in any order."""
    return resolve(fold(EMPTY_STATE, observations))


def merge_field(field: str, observations: Iterable[Observation]) -> FieldValue:
    """One single-valued field's value; observations of other fields are ignored.

    Multi-valued fields have no single winner: use :func:`merge_values`.
    """
    if field in MULTI_VALUED:
        raise ValueError(f"{field} is multi-valued: use merge_values")
    return merge_contact(o for o in observations if o.field == field).single.get(field, UNKNOWN)


def merge_values(field: str, observations: Iterable[Observation]) -> tuple[str, ...]:
    """One multi-valued field's values (rule 3); observations of other fields are ignored."""
    if field not in MULTI_VALUED:
        raise ValueError(f"{field} is single-valued: use merge_field")
    return merge_contact(o for o in observations if o.field == field).multi.get(field, ())


def _field_three_way(
    field: str, base: str | None, mine: str | None, theirs: str | None
) -> tuple[str | None, FieldConflict | None]:
    if mine in (base, theirs):
        return theirs, None
    if theirs == base:
        return mine, None
    return theirs, FieldConflict(field=field, base=base, mine=mine, theirs=theirs)


def three_way(
    base: Mapping[str, str | None],
    mine: Mapping[str, str | None],
    theirs: Mapping[str, str | None],
) -> ThreeWayResult:
    """Merge a rejected edit (``mine``) into the committed one (``theirs``) from ``base``.

    This is DESIGN rule 4: ``mine`` failed the ``version`` check because
    ``theirs`` was committed first from the same ``base``. A field changed on
    one side takes that side; changed on both to the same value it is simply
    that value; changed on both to different values, ``theirs`` stays (it is
    already committed) and the conflict keeps all three values, so nothing is
    lost. A missing key and a blank value both mean ``None`` (no value), so
    clearing a field never conflicts with clearing it another way.
    """
    merged: dict[str, str | None] = {}
    conflicts: list[FieldConflict] = []
    for name in sorted(base.keys() | mine.keys() | theirs.keys()):
        value, conflict = _field_three_way(
            name, _present(base.get(name)), _present(mine.get(name)), _present(theirs.get(name))
        )
        merged[name] = value
        if conflict is not None:
            conflicts.append(conflict)
    return ThreeWayResult(merged=merged, conflicts=tuple(conflicts))
