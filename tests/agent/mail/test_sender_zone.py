"""A sender's UTC offset from the Date header their client wrote: RFC 5322 offsets and
zone names, and nothing for "-0000", a missing zone or an offset no place uses."""

from __future__ import annotations

import time

import pytest

from agent.mail.sender_zone import utc_offset


@pytest.mark.parametrize(
    ("header", "zone"),
    [
        ("Tue, 1 Jul 2025 10:00:00 +0200", "UTC+02:00"),
        ("Tue, 1 Jul 2025 10:00:00 +0000", "UTC+00:00"),
        ("Tue, 1 Jul 2025 10:00:00 -0500", "UTC-05:00"),
        ("Tue, 1 Jul 2025 10:00:00 +0530", "UTC+05:30"),
        ("Tue, 1 Jul 2025 10:00:00 +0545", "UTC+05:45"),
        ("Tue, 1 Jul 2025 10:00:00 -0930", "UTC-09:30"),
        ("1 Jul 2025 10:00 +1400", "UTC+14:00"),
        ("1 Jul 2025 10:00 -1200", "UTC-12:00"),
        ("Wed, 2 Jul 2025 08:00:00 +0200 (CEST)", "UTC+02:00"),
        ("Tue,  1 Jul 2025\r\n 10:00:00 +0100", "UTC+01:00"),
        ("Tue, 1 Jul 2025 10:00:00 GMT", "UTC+00:00"),
        ("Tue, 1 Jul 2025 10:00:00 UT", "UTC+00:00"),
        ("Tue, 1 Jul 2025 10:00:00 EST", "UTC-05:00"),
        ("Tue, 1 Jul 2025 10:00:00 PDT", "UTC-07:00"),
    ],
)
def test_offsets(header: str, zone: str) -> None:
    assert utc_offset(header) == zone


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Tue, 1 Jul 2025 10:00:00 -0000",
        "Tue, 1 Jul 2025 10:00:00",
        "Tue, 1 Jul 2025 10:00:00 CEST",
        "Tue, 1 Jul 2025 10:00:00 +1500",
        "Tue, 1 Jul 2025 10:00:00 -1300",
        "Tue, 1 Jul 2025 10:00:00 +9900",
        "Tue, 1 Jul 2025 10:00:00 +0107",
        "Tue, 1 Jul 2025 10:00:00 +0260",
        "Tue, 1 Jul 2025 10:00:00 +02:00x",
        "Tue, 1 Jul 2025 10:00:00 +٠٢٠٠",
        "+0200",
        "yesterday at noon",
    ],
)
def test_no_zone(header: str | None) -> None:
    assert utc_offset(header) is None


def test_a_huge_header_is_clipped_and_read_fast() -> None:
    started = time.perf_counter()
    assert utc_offset("Tue, 1 Jul 2025 10:00:00 " + "x" * 1_000_000 + " +0200") is None
    assert utc_offset("(" * 1_000_000) is None
    assert time.perf_counter() - started < 1.0
