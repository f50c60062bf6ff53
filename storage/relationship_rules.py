"""How a history becomes relationship figures: strength, its level, the trend, reply times.

Pure functions over counts and message sequences, so that the rules can be
read, tested and explained apart from the queries that feed them
(``storage.relationships``).

Strength
--------
Each interaction of the last 365 days counts by its kind, decayed by its age::

    weight:  email 1, meeting 3
    decay:   1.0 within 30 days, 0.5 within 90, 0.2 within 365, 0 beyond
    strength = decayed(emails in) + decayed(emails out) + 3 * decayed(meetings)
               + min(decayed(emails in), decayed(emails out))

The last term rewards reciprocity: mail that goes both ways counts again,
mail one way only (a newsletter sent, a customer never answered) does not.
Every term only grows when an interaction is added, so an interaction logged
today never weakens a relationship. Levels: ``strong`` from 15, ``medium``
from 5, ``weak`` above 0, else ``none``.

Trend
-----
The rate of the last 30 days against the rate of the 90 days before:
``warming`` above 1.5 times it (and at least 2 interactions lately),
``cooling`` below half of it (with at least 3 interactions before), else
``steady``; ``none`` without either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from statistics import median
from typing import Any

WINDOWS = (30, 90, 365)
DECAY = {30: 1.0, 90: 0.5, 365: 0.2}
"""The weight of an interaction whose age falls within each window (and not a shorter one)."""
MEETING_WEIGHT = 3.0
LEVELS = ("none", "weak", "medium", "strong")
LEVEL_FLOORS = {"strong": 15.0, "medium": 5.0}
TRENDS = ("none", "cooling", "steady", "warming")
TREND_BASELINE_DAYS = 90
MAX_REPLY_SECONDS = 30 * 86400
"""A "reply" later than this is a new conversation, not an answer, and is not timed."""


@dataclass(frozen=True)
class Counts:
    """Interactions by kind and direction in each window (cumulative: 90 holds 30)."""

    emails_in: Mapping[int, int]
    emails_out: Mapping[int, int]
    meetings: Mapping[int, int]
    before_90: int = 0
    """Interactions in the 90 days before the last 30."""

    def total(self, days: int) -> int:
        return self.emails_in[days] + self.emails_out[days] + self.meetings[days]


def decayed(by_window: Mapping[int, int]) -> float:
    """A windowed count weighted by :data:`DECAY`: each interaction by its youngest window."""
    weight, shorter = 0.0, 0
    for days in WINDOWS:
        weight += (by_window[days] - shorter) * DECAY[days]
        shorter = by_window[days]
    return weight


def strength(counts: Counts) -> float:
    """The documented score (module docstring), rounded for stable storage."""
    inbound, outbound = decayed(counts.emails_in), decayed(counts.emails_out)
    meetings = decayed(counts.meetings)
    return round(inbound + outbound + MEETING_WEIGHT * meetings + min(inbound, outbound), 3)


def level(score: float) -> str:
    if score >= LEVEL_FLOORS["strong"]:
        return "strong"
    if score >= LEVEL_FLOORS["medium"]:
        return "medium"
    return "weak" if score > 0 else "none"


def trend(counts: Counts) -> str:
    recent, before = counts.total(30), counts.before_90
    if recent == 0 and before == 0:
        return "none"
    recent_rate, before_rate = recent / 30, before / TREND_BASELINE_DAYS
    if recent >= 2 and recent_rate > 1.5 * before_rate:
        return "warming"
    if before >= 3 and recent_rate < 0.5 * before_rate:
        return "cooling"
    return "steady"


def closest(team: Mapping[str, Sequence[Any]]) -> str | None:
    """The teammate with the most interactions, then the latest, then by address (stable);
    ``team`` maps an address to ``[interactions, last time]``, the time in ISO form as
    ``datetime.isoformat`` writes a UTC time, which orders as text as it does as time."""
    if not team:
        return None
    most = max(n for n, _ in team.values())
    latest = max(str(at) for n, at in team.values() if n == most)
    return min(email for email, (n, at) in team.items() if n == most and str(at) == latest)


def level_at_least(floor: str) -> tuple[str, ...]:
    """The levels at or above ``floor``, for queries ("strength at least medium")."""
    return LEVELS[LEVELS.index(floor) :]


@dataclass(frozen=True)
class ThreadMessage:
    """One email of a thread, as the reply-time rule sees it."""

    thread: str
    occurred_at: datetime
    ours: bool
    """Sent by the team (outbound), as opposed to by the contact (inbound)."""


def reply_times(messages: Iterable[ThreadMessage]) -> tuple[list[float], list[float]]:
    """Seconds from their message to our next one, and from ours to their next one.

    Within each thread, in time order, every change of side is a reply: the
    first message of the other side after one or more of ours answers the
    earliest unanswered one (a customer writing twice is answered once, from
    their first message). Gaps over :data:`MAX_REPLY_SECONDS` are new
    conversations and are left out.
    """
    ours: list[float] = []
    theirs: list[float] = []
    by_thread: dict[str, list[ThreadMessage]] = {}
    for message in messages:
        by_thread.setdefault(message.thread, []).append(message)
    for thread in by_thread.values():
        thread.sort(key=lambda m: m.occurred_at)
        waiting: ThreadMessage | None = None
        for message in thread:
            if waiting is None or waiting.ours == message.ours:
                waiting = waiting or message
                continue
            gap = (message.occurred_at - waiting.occurred_at).total_seconds()
            if gap <= MAX_REPLY_SECONDS:
                (ours if message.ours else theirs).append(gap)
            waiting = message
    return ours, theirs


def median_seconds(gaps: Sequence[float]) -> int | None:
    return round(median(gaps)) if gaps else None


def explain(
    *,
    level_name: str,
    counts: Counts,
    last_at: datetime | None,
    today: date,
) -> str:
    """One sentence a salesperson can check: "strong: 14 two-way emails and 3 meetings in
    90 days, last 2 days ago"."""
    if last_at is None:
        return "none: no interaction the team can see"
    emails = counts.emails_in[90] + counts.emails_out[90]
    if counts.emails_in[90] and counts.emails_out[90]:
        mail = f"{emails} two-way email{_s(emails)}"
    elif counts.emails_out[90]:
        mail = f"{emails} email{_s(emails)} sent, none received"
    else:
        mail = f"{emails} email{_s(emails)} received, none sent"
    meetings = counts.meetings[90]
    days = (today - last_at.date()).days
    ago = "today" if days <= 0 else f"{days} day{_s(days)} ago"
    return f"{level_name}: {mail} and {meetings} meeting{_s(meetings)} in 90 days, last {ago}"


def _s(n: int) -> str:
    return "" if n == 1 else "s"
