"""A sender's time zone, as the UTC offset their client wrote into the Date header.

RFC 5322 (3.3) dates end in the writer's local offset ("+0200", "-0500") or,
in obsolete syntax, a zone name ("GMT", "EST"). "-0000" means the writer
did not say where they were, so it gives no zone. An offset that no place on
Earth uses (beyond UTC-12:00 / UTC+14:00, or not on a quarter hour) is a
broken or forged header and gives none either. Pure; the header is clipped
to ``MAX_DATE_HEADER_CHARS`` before it is read.
"""

from __future__ import annotations

from email.utils import parsedate_tz

__all__ = ["MAX_DATE_HEADER_CHARS", "utc_offset"]

MAX_DATE_HEADER_CHARS = 200
"""A Date header is about 40 characters; a longer one is read no further."""
_EARLIEST_OFFSET = -12 * 60
_LATEST_OFFSET = 14 * 60
_QUARTER_HOUR = 15
_NAMED_ZONES = {
    "ut": 0, "gmt": 0, "z": 0,
    "edt": -4 * 60, "est": -5 * 60, "cdt": -5 * 60, "cst": -6 * 60,
    "mdt": -6 * 60, "mst": -7 * 60, "pdt": -7 * 60, "pst": -8 * 60,
}  # fmt: skip
"""The zone names RFC 5322 (4.3) still reads; any other name says nothing."""


def utc_offset(date_header: str | None) -> str | None:
    """``"UTC+02:00"`` for ``"Tue, 1 Jul 2025 10:00:00 +0200"``; None when the header
    names no usable offset (none, "-0000", a zone no place uses, or no date at all)."""
    if not date_header:
        return None
    clipped = " ".join(date_header[:MAX_DATE_HEADER_CHARS].split())
    minutes = _zone_minutes(clipped)
    if minutes is None or not _EARLIEST_OFFSET <= minutes <= _LATEST_OFFSET:
        return None
    if minutes % _QUARTER_HOUR or not _is_date(clipped):
        return None
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def _zone_minutes(header: str) -> int | None:
    """The offset the last token states, in minutes; a trailing "(CEST)" comment is skipped."""
    tokens = [token for token in header.split() if not token.startswith("(")]
    if not tokens:
        return None
    zone = tokens[-1]
    named = _NAMED_ZONES.get(zone.casefold())
    return named if named is not None else _numeric_offset(zone)


def _numeric_offset(zone: str) -> int | None:
    """An offset in minutes ("+0200" -> 120, "-0530" -> -330); None for "-0000" (no zone
    given) and for anything else."""
    digits = zone[1:]
    if zone[:1] not in ("+", "-") or len(digits) != 4 or not digits.isascii():
        return None
    if not digits.isdigit() or zone == "-0000" or int(digits[2:]) >= 60:
        return None
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    return -minutes if zone[0] == "-" else minutes


def _is_date(header: str) -> bool:
    """Whether the stdlib reads a date in ``header``: an offset alone is no Date header."""
    try:
        return parsedate_tz(header) is not None
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
