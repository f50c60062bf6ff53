"""ICS connector (kind ``ics``): a .ics file, or a folder of them, read from disk.

Terms. A *file key* is a file's path relative to the configured folder (its
name when a single file is configured); it prefixes the ``source_id`` of the
file's occurrences. The *window* runs from ``since`` to ``horizon_days``
ahead, in whole days (``recurrence.expansion_window``); recurring meetings
are expanded over it. An occurrence's *fingerprint* is its SEQUENCE and
LAST-MODIFIED (DTSTAMP when absent).

Cursor, version 1::

    {"v": 1, "files": {file_key: {
        "mtime_ns": int, "size": int, "window": [start, end],
        "events": {"<uid>/<original start, ISO>": [sequence, updated or null]},
        "error": reason,   # only for a file that could not be read
    }}}

A file whose size, mtime and window are what the cursor says is skipped
without being read. Otherwise it is read and expanded, and only occurrences
whose fingerprint changed are yielded; an occurrence that is gone yields
``SourceRemoved``, but only when its original start lies inside the window
(one outside it was not deleted, merely not looked at). A removed file yields
``SourceRemoved`` for all its occurrences. A file modified within the last
two seconds is read again next time (its size and mtime are not recorded),
since a second write in the same clock tick could leave both unchanged.

Nothing in a file ever ends the fetch: a calendar problem is an
``Unreadable`` item, which the agent quarantines with its reason, in the
batch whose cursor moves past it. A file that cannot be read or parsed is
reported as ``Unreadable(file_key, reason)``; its cursor entry records the
error, size and mtime, so it is not read (nor reported) again until it
changes. A bad file keeps the occurrences it had: a file caught half written
must not read as "every meeting deleted". A series inside a good file that
cannot be expanded, or an occurrence that cannot be converted, is reported
as ``Unreadable(f"{file_key}/{uid}", reason)`` and its series keeps the
occurrences it had the same way. A file that schedules nothing (only time
zones, say) yields nothing and is no error; nor does an iTIP answer other
than a REPLY (COUNTER, REFRESH...), which names a meeting without being one.

A REPLY file (an attendee's answer, METHOD:REPLY) yields a ``CalendarReply``
per answer it carries (``connectors.ical.parts.calendar_replies``): the agent
records it on the meeting it names, never as a meeting. Its cursor entry is
marked ``"answers": true`` and holds no events: answers are not expanded, so
the window does not concern them and the file is read again only when it
changes; a REPLY file that is gone takes nothing with it (the answer was given).

Batches: one per file with changes, split every ``batch_size`` items. A
batch that ends part-way through a file records the occurrences done so far
but not the file's size and mtime, so a fetch that stops there re-reads the
file and yields only the rest.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from icalendar import Calendar

from config.limits import DEFAULT, MAX_ICS_FILE_BYTES, Limits
from connectors.capabilities import ScopeSize
from connectors.errors import CursorInvalid, TransientError
from connectors.ical.bounded_rules import ExpansionBudget
from connectors.ical.parts import (
    calendar_replies,
    parse_calendar,
    stable_uid,
    to_calendar_event,
)
from connectors.ical.recurrence import DEFAULT_HORIZON_DAYS, expand, expansion_window
from connectors.records import (
    Batch,
    CalendarEvent,
    Cursor,
    Item,
    Limited,
    SourceRemoved,
    Unreadable,
)

CURSOR_VERSION = 1
_log = logging.getLogger(__name__)
_RACY_NS = 2_000_000_000
_ANSWERS = frozenset({"REPLY", "COUNTER", "DECLINECOUNTER", "REFRESH"})
"""iTIP methods whose VEVENTs answer a meeting (RFC 5546): never meetings of their own.
A REPLY's answers are read (``_replies``); the others are left out."""
_FILE = "!file"
"""The key, among a file's changes, of the report that the whole file cannot be read."""

Entry = dict[str, Any]
Window = tuple[datetime, datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class IcsConnector:
    """Occurrences from .ics files, with changes found by file and by fingerprint."""

    def __init__(
        self,
        name: str,
        path: str | Path,
        owner: str,
        since: datetime | None = None,
        horizon_days: int = DEFAULT_HORIZON_DAYS,
        now: Callable[[], datetime] = _utc_now,
        *,
        batch_size: int = 500,
        limits: Limits = DEFAULT,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.owner = owner.strip().lower()
        self.since = since
        self.horizon_days = horizon_days
        self.now = now
        self.batch_size = max(1, batch_size)
        self.limits = limits
        self._budget = ExpansionBudget(limits)

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of changed occurrences and removals since ``cursor`` (all of them from None)."""
        known = _read_cursor(cursor)
        self._budget = ExpansionBudget(self.limits)
        window = expansion_window(self.since, self.now(), self.horizon_days)
        files = self._files()
        state = dict(known)
        unsaved = False
        for key, plan in self._plans(files, known, window):
            for entry, items in self._split(plan):
                _place(state, key, entry)
                yield Batch(items=items, cursor=_cursor(state))
                unsaved = False
            if state.get(key) != plan.final:
                _place(state, key, plan.final)
                unsaved = True
        if unsaved:
            yield Batch(items=(), cursor=_cursor(state))

    def first_sync_size(self) -> list[ScopeSize]:
        """The meeting occurrences a first sync would yield, read as it would read them."""
        events = sum(
            isinstance(item, CalendarEvent) for batch in self.fetch(None) for item in batch.items
        )
        return [ScopeSize(str(self.path), events, "meeting occurrences")]

    def _plans(
        self, files: Mapping[str, Path], known: Mapping[str, Entry], window: Window
    ) -> Iterator[tuple[str, _Plan]]:
        """What to do about each file that changed, then each file that is gone."""
        for key in sorted(files):
            entry = known.get(key)
            try:
                stat = files[key].stat()
            except FileNotFoundError:
                continue
            except OSError as error:  # unreadable metadata: reported, read again next time
                reason = f"the file cannot be read: {_describe(error)}"
                kept = {"events": dict(entry.get("events", {}))} if entry else {"events": {}}
                yield (
                    key,
                    _Plan(changes=[(_FILE, Unreadable(key, reason))], old_events={}, final=kept),
                )
                continue
            if not _unchanged(entry, stat, window):
                yield key, self._plan(key, files[key], stat, entry, window)
        for key in sorted(set(known) - set(files)):
            old_events = dict(known[key].get("events", {}))
            removals = [(k, SourceRemoved(_source_id(key, k))) for k in sorted(old_events)]
            yield key, _Plan(changes=removals, old_events=old_events, final=None)

    def _plan(
        self, key: str, path: Path, stat: os.stat_result, entry: Entry | None, window: Window
    ) -> _Plan:
        old_events: dict[str, Any] = dict(entry.get("events", {})) if entry else {}
        try:
            if stat.st_size > MAX_ICS_FILE_BYTES:
                raise ValueError(f"the file is larger than {MAX_ICS_FILE_BYTES} bytes")
            calendar = parse_calendar(path.read_bytes())
            if _method(calendar) == "REPLY":
                return _replies(key, calendar, stat, old_events, window)
            events, unexpandable, capped = self._occurrences(key, calendar, window)
        except Exception as error:  # whatever one file does, the others go on
            reason = f"the file cannot be read as a calendar: {type(error).__name__}: {error}"
            final = {
                "mtime_ns": stat.st_mtime_ns,
                "size": stat.st_size,
                "error": reason,
                "events": old_events,
            }
            return _Plan(
                changes=[(_FILE, Unreadable(key, reason))], old_events=old_events, final=final
            )
        changes, new_events = _changes(
            key, old_events, events, window, set(unexpandable) | set(capped)
        )
        reports: list[tuple[str, Item]] = [
            (f"{uid}/capped", Limited(f"{key}/{uid}", "series_capped", reason))
            for uid, reason in sorted(capped.items())
        ]
        reports += [
            (f"{uid}/unreadable", Unreadable(f"{key}/{uid}", reason))
            for uid, reason in sorted(unexpandable.items())
        ]
        final = {**_stat_entry(stat), "window": _window_json(window), "events": new_events}
        return _Plan(changes=changes + reports, old_events=old_events, final=final)

    def _files(self) -> dict[str, Path]:
        """The .ics files to read, by file key; hidden files and folders are left out."""
        root = self.path
        if root.is_file():
            return {root.name: root}
        if not root.is_dir():
            raise TransientError(f"{root} is neither a file nor a folder (not mounted?)")
        found: dict[str, Path] = {}
        for path in root.rglob("*"):
            relative = path.relative_to(root)
            if path.suffix.lower() != ".ics" or any(p.startswith(".") for p in relative.parts):
                continue
            if path.is_file():
                found[relative.as_posix()] = path
        return found

    def _occurrences(
        self, key: str, calendar: Calendar, window: Window
    ) -> tuple[list[CalendarEvent], dict[str, str], dict[str, str]]:
        """The file's occurrences in the window; the series that cannot be read (expanded,
        or an occurrence of it converted), by UID with the reason; and those cut or left
        out for a bound, with the reason (``config.limits``)."""
        already = set(self._budget.capped)
        method = _method(calendar)
        if method in _ANSWERS:
            _log.info("%s: left out, an iTIP %s (answers to a meeting, not meetings)", key, method)
            return [], {}, {}
        unexpandable: dict[str, str] = {}

        def left_out(uid: str, error: Exception) -> None:
            _log.warning("%s: left out series %s, which cannot be read: %r", key, uid, error)
            unexpandable.setdefault(uid, f"this meeting cannot be read: {_describe(error)}")

        events: dict[str, CalendarEvent] = {}
        for occurrence in expand(calendar, *window, on_bad_series=left_out, budget=self._budget):
            try:
                event = to_calendar_event(
                    occurrence, calendar=key, owner=self.owner, source_prefix=key, method=method
                )
            except Exception as error:  # one occurrence costs its series, never the file
                left_out(stable_uid(occurrence), error)
                continue
            events[event.source_id] = event
        ordered = sorted(events.values(), key=lambda event: (event.original_start, event.uid))
        capped = {uid: r for uid, r in self._budget.capped.items() if uid not in already}
        return ordered, unexpandable, capped

    def _split(self, plan: _Plan) -> Iterator[tuple[Entry | None, Sequence[Item]]]:
        """The plan's changes in batches, each with the file's cursor entry once it is committed.

        Every batch but the last gets an entry without size and mtime, holding
        the fingerprints of what was yielded so far, so that a fetch stopped
        there reads the file again; the last gets the plan's final entry.
        """
        progress = dict(plan.old_events)
        changes = plan.changes
        for first in range(0, len(changes), self.batch_size):
            chunk = changes[first : first + self.batch_size]
            for event_key, item in chunk:
                if isinstance(item, CalendarEvent):
                    progress[event_key] = _fingerprint(item)
                else:
                    progress.pop(event_key, None)
            done = first + self.batch_size >= len(changes)
            entry = plan.final if done else {"events": dict(progress)}
            yield entry, [item for _, item in chunk]


def _method(calendar: Calendar) -> str:
    """The calendar's iTIP METHOD, upper-case; empty for a plain calendar file."""
    return str(calendar.get("METHOD", "")).strip().upper()


def _replies(
    key: str,
    calendar: Calendar,
    stat: os.stat_result,
    old_events: Mapping[str, Any],
    window: Window,
) -> _Plan:
    """A REPLY file's plan: its answers, then what it scheduled before it was one (removed).

    Answers carry no fingerprint in the cursor: the whole file is read again
    when it changes, and an answer applied twice leaves the same state.
    """
    replies, more = calendar_replies(calendar, source_prefix=key)
    changes: list[tuple[str, Item]] = [(f"reply/{n}", reply) for n, reply in enumerate(replies)]
    if more:
        detail = f"{more} more answers than the agent reads from one reply"
        changes.append(("reply/capped", Limited(key, "replies_capped", detail)))
    removals, kept = _changes(key, old_events, [], window)
    final = {**_stat_entry(stat), "answers": True, "events": kept}
    return _Plan(changes=changes + removals, old_events=old_events, final=final)


@dataclass(frozen=True)
class _Plan:
    """One file's changes and its cursor entry afterwards (``None`` once the file is gone)."""

    changes: Sequence[tuple[str, Item]]
    old_events: Mapping[str, Any]
    final: Entry | None


def _changes(
    file_key: str,
    old_events: Mapping[str, Any],
    events: Sequence[CalendarEvent],
    window: Window,
    unexpandable: Set[str] = frozenset(),
) -> tuple[list[tuple[str, Item]], dict[str, Any]]:
    """New or changed occurrences then removals, and the fingerprints that hold afterwards.

    An occurrence is removed only when its original start lies in the window
    and its series could be expanded: anything else was not looked at, and
    is kept as it was.
    """
    current = {_event_key(event): event for event in events}
    changed: list[tuple[str, Item]] = [
        (key, event) for key, event in current.items() if old_events.get(key) != _fingerprint(event)
    ]
    gone = [key for key in sorted(old_events) if key not in current]
    looked_at = {
        key
        for key in gone
        if _starts_within(key, window) and key.rsplit("/", 1)[0] not in unexpandable
    }
    removed: list[tuple[str, Item]] = [
        (key, SourceRemoved(_source_id(file_key, key))) for key in gone if key in looked_at
    ]
    fingerprints = {key: old_events[key] for key in gone if key not in looked_at}
    fingerprints.update((key, _fingerprint(event)) for key, event in current.items())
    return changed + removed, fingerprints


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _place(state: dict[str, Entry], key: str, entry: Entry | None) -> None:
    if entry is None:
        state.pop(key, None)
    else:
        state[key] = entry


def _unchanged(entry: Entry | None, stat: os.stat_result, window: Window) -> bool:
    if entry is None or entry.get("mtime_ns") != stat.st_mtime_ns:
        return False
    if entry.get("size") != stat.st_size:
        return False
    if "error" in entry or entry.get("answers"):
        return True  # neither is read against the window
    return entry.get("window") == _window_json(window)


def _stat_entry(stat: os.stat_result) -> Entry:
    """Size and mtime, unless the file is so fresh that a second write could hide behind them."""
    if time.time_ns() - stat.st_mtime_ns < _RACY_NS:
        return {}
    return {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size}


def _event_key(event: CalendarEvent) -> str:
    return f"{event.uid}/{event.original_start.isoformat()}"


def _source_id(file_key: str, event_key: str) -> str:
    return f"{file_key}/{event_key}"


def _fingerprint(event: CalendarEvent) -> list[Any]:
    return [event.sequence, event.updated.isoformat() if event.updated else None]


def _starts_within(event_key: str, window: Window) -> bool:
    try:
        original_start = datetime.fromisoformat(event_key.rsplit("/", 1)[-1])
    except ValueError:
        return True
    return window[0] <= original_start < window[1]


def _window_json(window: Window) -> list[str]:
    return [window[0].isoformat(), window[1].isoformat()]


def _cursor(state: Mapping[str, Entry]) -> Cursor:
    return {"v": CURSOR_VERSION, "files": dict(state)}


def _read_cursor(cursor: Cursor | None) -> dict[str, Entry]:
    """The cursor's files; ``CursorInvalid`` for one this version cannot read."""
    if cursor is None:
        return {}
    files = cursor.get("files")
    if cursor.get("v") != CURSOR_VERSION or not isinstance(files, dict):
        raise CursorInvalid(f"not an ics cursor of version {CURSOR_VERSION}")
    for key, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("events", {}), dict):
            raise CursorInvalid(f"cursor entry for {key!r} is malformed")
    return dict(files)
