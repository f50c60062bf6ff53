"""One staff member's calendar as an .ics file, made from the same world as the mail.

The meetings name the same customers as the mailboxes, so the demo's
meetings and mail meet on the same contacts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tests.support.mailgen.dates import BASE_DATE, DEFAULT_DAYS, weekday_after
from tests.support.mailgen.ics import (
    VTIMEZONE,
    ics_lines,
    ics_local,
    ics_param,
    ics_person,
    ics_text,
    ics_utc,
)
from tests.support.mailgen.mime import random_token
from tests.support.mailgen.people import (
    ACME,
    CAST,
    HANNAH,
    INTERNAL_DOMAIN,
    LONDON,
    PRIYA,
    TOM,
    Company,
    Person,
    World,
    build_world,
    time_zone,
)
from tests.support.mailgen.presets import DEMO_CONTACTS, DEMO_MEETINGS


@dataclass(frozen=True)
class _Meeting:
    """One VEVENT: a master (maybe recurring, with EXDATEs) or a moved instance of one."""

    uid: str
    summary: str
    start: datetime
    end: datetime
    organizer: Person
    guests: tuple[tuple[Person, str, str], ...]
    rooms: tuple[tuple[str, str], ...] = ()
    location: str = ""
    description: str = ""
    status: str = "CONFIRMED"
    sequence: int = 0
    rrule: str = ""
    exdates: tuple[datetime, ...] = ()
    recurrence_id: datetime | None = None
    all_day: bool = False
    utc: bool = False
    alarm: bool = False


_ROOMS = (
    ("Thames Room", "room-thames@northwind.example"),
    ("Severn Room", "room-severn@northwind.example"),
)
_PURPOSES = (
    "quarterly business review",
    "renewal discussion",
    "product demo",
    "onboarding kick-off",
    "technical deep dive",
    "pricing call",
    "roadmap preview",
)


def generate_calendar(
    seed: int,
    contacts: int = DEMO_CONTACTS,
    *,
    owner: str = PRIYA,
    meetings: int = DEMO_MEETINGS,
    days: int = DEFAULT_DAYS,
    base: datetime = BASE_DATE,
) -> bytes:
    """``owner``'s calendar as an .ics file (RFC 5545, times in Europe/London with a VTIMEZONE).

    It holds the cases a calendar connector must handle: a weekly customer
    meeting with an EXDATE and one moved instance, a cancelled meeting,
    internal-only meetings in a room (CUTYPE=ROOM), a meeting a customer
    organised, an all-day event, attendees in every PARTSTAT; then seeded
    meetings with the same world's customers up to ``meetings`` events.
    """
    world = build_world(seed, contacts)
    me = world.member(owner)
    rng = random.Random(f"{seed}:calendar:{owner}")
    events = _fixed_meetings(rng, world, me, base, days)
    while len(events) < meetings:
        events.append(_random_meeting(rng, world, me, base, days))
    events.sort(key=lambda e: (e.start, e.recurrence_id is not None))
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Northwind Analytics//crm-sync sample data//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_text(me.email)}",
        "X-WR-TIMEZONE:Europe/London",
        *VTIMEZONE,
    ]
    for event in events:
        lines += _vevent(event, base)
    lines.append("END:VCALENDAR")
    return ics_lines(lines)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=time_zone(LONDON))


def _accounts(world: World, me: Person) -> list[Company]:
    mine = sorted(
        (c for c, lead in world.leads.items() if lead == me and c in world.colleagues),
        key=lambda c: c.domain,
    )
    return mine or list(world.colleagues) or [ACME]


def _guests_of(world: World, company: Company) -> tuple[Person, ...]:
    return world.colleagues.get(company, (CAST[0],))


def _fixed_meetings(
    rng: random.Random, world: World, me: Person, base: datetime, days: int
) -> list[_Meeting]:
    first_day = (base - timedelta(days=days - 5)).date()
    while first_day.weekday() != 1:
        first_day += timedelta(days=1)
    account = sorted(_accounts(world, me), key=lambda c: c.name)[0]
    customers = _guests_of(world, account)[:2]
    tom = world.member(TOM)
    weeks = days // 7 + 3
    start = _at(first_day, 15)
    sync_uid = f"{rng.getrandbits(64):016x}@{INTERNAL_DOMAIN}"
    guests = tuple(
        (p, "ACCEPTED" if j == 0 else "TENTATIVE", "REQ-PARTICIPANT")
        for j, p in enumerate(customers)
    )
    optional = () if me == tom else ((tom, "NEEDS-ACTION", "OPT-PARTICIPANT"),)
    sync = _Meeting(
        sync_uid,
        f"{account.name} / Northwind weekly sync",
        start,
        start + timedelta(minutes=30),
        me,
        ((me, "ACCEPTED", "REQ-PARTICIPANT"), *guests, *optional),
        location="Google Meet",
        description="Weekly check-in: open tickets, adoption, next steps.",
        rrule=f"FREQ=WEEKLY;BYDAY=TU;COUNT={weeks}",
        exdates=(start + timedelta(weeks=6),),
        alarm=True,
    )
    moved_from = start + timedelta(weeks=9)
    moved = _Meeting(
        sync_uid,
        sync.summary,
        _at(moved_from.date() + timedelta(days=1), 11),
        _at(moved_from.date() + timedelta(days=1), 11, 30),
        me,
        sync.guests,
        location="Northwind office, London",
        description="Moved to Wednesday, in person.",
        sequence=1,
        recurrence_id=moved_from,
    )
    monday = first_day - timedelta(days=1)
    staff = tuple((p, "ACCEPTED", "REQ-PARTICIPANT") for p in world.staff if p.email != HANNAH)
    review_until = (base + timedelta(days=14)).strftime("%Y%m%dT235959Z")
    review = _Meeting(
        f"{rng.getrandbits(64):016x}@{INTERNAL_DOMAIN}",
        "Pipeline review",
        _at(monday, 9, 30),
        _at(monday, 10, 15),
        tom,
        staff,
        rooms=(_ROOMS[0],),
        location=_ROOMS[0][0],
        rrule=f"FREQ=WEEKLY;BYDAY=MO;UNTIL={review_until}",
    )
    offsite_day = weekday_after((base - timedelta(days=days // 3)).date())
    offsite = _Meeting(
        f"{rng.getrandbits(64):016x}@{INTERNAL_DOMAIN}",
        "Sales offsite planning",
        _at(offsite_day, 13),
        _at(offsite_day, 14, 30),
        me,
        (
            (me, "ACCEPTED", "REQ-PARTICIPANT"),
            (tom, "ACCEPTED", "REQ-PARTICIPANT"),
            (world.member(HANNAH), "DECLINED", "REQ-PARTICIPANT"),
        ),
        rooms=(_ROOMS[1],),
        location=_ROOMS[1][0],
        description="Budget and venue for Q3.",
    )
    cancelled_day = weekday_after((base - timedelta(days=days // 2)).date())
    other = world.find("shaddad@initech.example") or rng.choice(world.customers or CAST)
    cancelled = _Meeting(
        f"{rng.getrandbits(64):016x}@{INTERNAL_DOMAIN}",
        f"{other.company.name} pricing review",
        _at(cancelled_day, 16),
        _at(cancelled_day, 16, 45),
        me,
        ((me, "ACCEPTED", "REQ-PARTICIPANT"), (other, "DECLINED", "REQ-PARTICIPANT")),
        status="CANCELLED",
        sequence=2,
        location="Zoom",
    )
    host = world.find("olivia.grant@uk.umbrella.example") or rng.choice(world.customers or CAST)
    visit_day = weekday_after((base + timedelta(days=5)).date())
    visit = _Meeting(
        f"{rng.getrandbits(100):025x}@google.com",
        f"Northwind at {host.company.name}: contract review",
        _at(visit_day, 10),
        _at(visit_day, 11, 30),
        host,
        ((host, "ACCEPTED", "REQ-PARTICIPANT"), (me, "TENTATIVE", "REQ-PARTICIPANT")),
        location=f"{host.company.name}, 1 Harbourside, Bristol",
        description="Agenda:\n1. Order form\n2. Data processing agreement\n3. Next steps",
    )
    summit_day = weekday_after((base - timedelta(days=days // 4)).date())
    summit = _Meeting(
        f"{rng.getrandbits(64):016x}@{INTERNAL_DOMAIN}",
        "London Data Summit",
        _at(summit_day, 0),
        _at(summit_day + timedelta(days=1), 0),
        me,
        (),
        location="ExCeL London",
        all_day=True,
    )
    return [sync, moved, review, offsite, cancelled, visit, summit]


def _random_meeting(
    rng: random.Random, world: World, me: Person, base: datetime, days: int
) -> _Meeting:
    company = (
        rng.choice(_accounts(world, me))
        if rng.random() < 0.6 or not world.colleagues
        else rng.choice(sorted(world.colleagues, key=lambda c: c.domain))
    )
    people = list(_guests_of(world, company))
    customers = rng.sample(people, k=min(len(people), rng.randint(1, 3)))
    offset = timedelta(days=rng.uniform(0, days + 21))
    day = weekday_after((base - timedelta(days=days) + offset).date())
    start = _at(day, rng.randint(9, 16), rng.choice((0, 30)))
    end = start + timedelta(minutes=rng.choice((30, 45, 60)))
    future = start > base
    staff = [me] + ([rng.choice([p for p in world.staff if p != me])] if rng.random() < 0.4 else [])
    organizer = me if rng.random() < 0.7 else customers[0]

    def answer(person: Person) -> str:
        if person == organizer:
            return "ACCEPTED"
        states = ("ACCEPTED", "TENTATIVE", "NEEDS-ACTION", "DECLINED")
        weights = (4, 1, 3, 1) if future else (8, 1, 1, 1)
        return rng.choices(states, weights=weights)[0]

    guests = tuple((p, answer(p), "REQ-PARTICIPANT") for p in (*staff, *customers))
    uid = (
        f"{rng.getrandbits(64):016x}@{INTERNAL_DOMAIN}"
        if organizer.staff
        else f"{rng.getrandbits(100):025x}@google.com"
    )
    purpose = rng.choice(_PURPOSES)
    link = (
        f"https://meet.google.example/{random_token(rng, 3).lower()}-{random_token(rng, 4).lower()}"
    )
    return _Meeting(
        uid,
        f"{company.name} / Northwind: {purpose}",
        start,
        end,
        organizer,
        guests,
        location=rng.choice(("Google Meet", "Zoom", f"{company.name} office")),
        description=f"{purpose.capitalize()}.\n\nJoin with Google Meet: {link}",
        utc=rng.random() < 0.15,
        alarm=organizer == me and rng.random() < 0.5,
    )


def _vevent(m: _Meeting, base: datetime) -> list[str]:
    def stamp(name: str, when: datetime) -> str:
        if m.all_day:
            return f"{name};VALUE=DATE:{when:%Y%m%d}"
        if m.utc:
            return f"{name}:{ics_utc(when)}"
        return f"{name};TZID=Europe/London:{ics_local(when)}"

    created = min(m.start, base) - timedelta(days=14, hours=3)
    lines = ["BEGIN:VEVENT", stamp("DTSTART", m.start), stamp("DTEND", m.end)]
    if m.rrule:
        lines.append(f"RRULE:{m.rrule}")
    lines += [stamp("EXDATE", d) for d in m.exdates]
    if m.recurrence_id is not None:
        lines.append(stamp("RECURRENCE-ID", m.recurrence_id))
    lines += [
        f"DTSTAMP:{ics_utc(base)}",
        ics_person("ORGANIZER", m.organizer, ()),
        f"UID:{m.uid}",
    ]
    for person, partstat, role in m.guests:
        params = [("CUTYPE", "INDIVIDUAL"), ("ROLE", role), ("PARTSTAT", partstat)]
        if partstat == "NEEDS-ACTION":
            params.append(("RSVP", "TRUE"))
        lines.append(ics_person("ATTENDEE", person, params))
    for name, email in m.rooms:
        lines.append(
            f"ATTENDEE;CUTYPE=ROOM;ROLE=NON-PARTICIPANT;PARTSTAT=ACCEPTED;"
            f"CN={ics_param(name)}:mailto:{email}"
        )
    lines.append(f"CREATED:{ics_utc(created)}")
    if m.description:
        lines.append(f"DESCRIPTION:{ics_text(m.description)}")
    lines.append(f"LAST-MODIFIED:{ics_utc(created + timedelta(days=m.sequence + 1))}")
    if m.location:
        lines.append(f"LOCATION:{ics_text(m.location)}")
    lines += [
        f"SEQUENCE:{m.sequence}",
        f"STATUS:{m.status}",
        f"SUMMARY:{ics_text(m.summary)}",
        f"TRANSP:{'TRANSPARENT' if m.all_day else 'OPAQUE'}",
    ]
    if m.alarm:
        lines += [
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:This is an event reminder",
            "TRIGGER:-P0DT0H10M0S",
            "END:VALARM",
        ]
    lines.append("END:VEVENT")
    return lines
