"""Who the mail is between: Northwind's staff, a fixed cast of customers, and generated ones.

The cast comes first in every world, so even a small demo has each hard case
(a sub-domain, free mail, Outlook in windows-1252, Thunderbird in
iso-8859-1, HTML-only webmail); bigger runs add companies drawn from a seeded
``Random`` until there are ``contacts`` customers.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

from tests.support.mailgen.names import (
    COMPANY_WORDS,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    SUFFIXES,
    TITLES,
)

INTERNAL_DOMAIN = "northwind.example"
COMPANY_NAME = "Northwind Analytics"
LONDON = "Europe/London"

PRIYA = "priya.raman@northwind.example"
TOM = "tom.whitaker@northwind.example"
ZOE = "zoe.lindqvist@northwind.example"
MARCUS = "marcus.okafor@northwind.example"
HANNAH = "hannah.becker@northwind.example"


@dataclass(frozen=True)
class Company:
    """An organisation; ``domain`` is the one its people's addresses are made from."""

    name: str
    domain: str
    tz: str = LONDON
    lang: str = "en"


@dataclass(frozen=True)
class Person:
    """Someone who sends mail: ``client`` decides how their messages look."""

    name: str
    email: str
    title: str
    phone: str
    company: Company
    client: str = "gmail"
    charset: str = "utf-8"

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def staff(self) -> bool:
        return self.email.endswith("@" + INTERNAL_DOMAIN)

    @property
    def lang(self) -> str:
        return self.company.lang

    @property
    def zone(self) -> ZoneInfo:
        return time_zone(self.company.tz)


@dataclass(frozen=True)
class World:
    """Everyone the generated mail is between, built from the seed and ``contacts``."""

    staff: tuple[Person, ...]
    customers: tuple[Person, ...]
    leads: Mapping[Company, Person]
    colleagues: Mapping[Company, tuple[Person, ...]]

    def member(self, email: str) -> Person:
        for person in self.staff:
            if person.email == email:
                return person
        raise ValueError(f"{email} is not a member of staff at {INTERNAL_DOMAIN}")

    def find(self, email: str) -> Person | None:
        return next((p for p in self.customers if p.email == email), None)


@cache
def time_zone(name: str) -> ZoneInfo:
    """Cached: every date of every message goes through one of a handful of zones."""
    return ZoneInfo(name)


_NORTHWIND = Company(COMPANY_NAME, INTERNAL_DOMAIN)
STAFF = (
    Person("Priya Raman", PRIYA, "Account Executive", "+44 20 7946 0102", _NORTHWIND),
    Person("Tom Whitaker", TOM, "Head of Sales", "+44 20 7946 0101", _NORTHWIND),
    Person("Zoë Lindqvist", ZOE, "Customer Success Manager", "+44 20 7946 0103", _NORTHWIND),
    Person("Marcus Okafor", MARCUS, "Solutions Engineer", "+44 20 7946 0104", _NORTHWIND),
    Person("Hannah Becker", HANNAH, "Finance Manager", "+44 20 7946 0105", _NORTHWIND),
)
SALES = (PRIYA, TOM, ZOE)

ACME = Company("Acme Corporation", "acme.example", "America/New_York")
_GLOBEX = Company("Globex", "globex.example")
_INITECH = Company("Initech", "initech.example", "America/Chicago")
_UMBRELLA = Company("Umbrella UK", "uk.umbrella.example")
_LUMIERE = Company("Lumière Conseil", "lumiere-conseil.example", "Europe/Paris", "fr")
_MUELLER = Company("Müller & Söhne GmbH", "mueller-soehne.example", "Europe/Berlin", "de")
_ORTEGA = Company("Ortega Consulting", "gmail.com")

CAST = (
    Person(
        "Dana Whitfield", "dana.whitfield@acme.example", "VP Operations", "+1 212 555 0142", ACME
    ),
    Person(
        "Olivia Grant",
        "olivia.grant@uk.umbrella.example",
        "Procurement Lead",
        "+44 117 496 0455",
        _UMBRELLA,
        "outlook",
        "windows-1252",
    ),
    Person(
        "Élodie Fournier",
        "e.fournier@lumiere-conseil.example",
        "Directrice financière",
        "+33 1 99 00 12 34",
        _LUMIERE,
        "thunderbird",
        "iso-8859-1",
    ),
    Person(
        "Carla Mendes", "carla@globex.example", "Head of Data", "+44 161 496 0233", _GLOBEX, "html"
    ),
    Person(
        "Raj Patel",
        "raj.patel@mail.acme.example",
        "IT Manager",
        "+1 212 555 0178",
        ACME,
        "thunderbird",
    ),
    Person(
        "Sam Ortega",
        "sam.ortega.consulting@gmail.com",
        "Independent Consultant",
        "+44 7700 900123",
        _ORTEGA,
        "apple",
    ),
    Person(
        "Samir Haddad",
        "shaddad@initech.example",
        "Director of Engineering",
        "+1 312 555 0190",
        _INITECH,
        "outlook",
    ),
    Person(
        "Jürgen Weiß",
        "j.weiss@mueller-soehne.example",
        "Leiter IT",
        "+49 30 23125 678",
        _MUELLER,
        "outlook",
        "iso-8859-1",
    ),
    Person("Ben Adeyemi", "ben@globex.example", "Data Engineer", "+44 161 496 0871", _GLOBEX),
    Person(
        "Grace Liu",
        "grace.liu@acme.example",
        "Procurement Specialist",
        "+1 212 555 0163",
        ACME,
        "apple",
    ),
)
_CAST_LEADS = {
    ACME: PRIYA,
    _GLOBEX: PRIYA,
    _LUMIERE: PRIYA,
    _UMBRELLA: TOM,
    _ORTEGA: TOM,
    _INITECH: ZOE,
    _MUELLER: ZOE,
}
_ZONES = (
    (LONDON, 40),
    ("America/New_York", 18),
    ("Europe/Berlin", 10),
    ("Europe/Paris", 8),
    ("America/Chicago", 6),
    ("America/Los_Angeles", 6),
    ("Europe/Amsterdam", 5),
    ("Europe/Dublin", 4),
    ("Asia/Singapore", 2),
    ("Australia/Sydney", 1),
)
_CLIENTS = (("gmail", 36), ("outlook", 36), ("apple", 13), ("thunderbird", 7), ("html", 8))
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.co.uk", "icloud.com", "gmx.de")
_FOLD = str.maketrans({"ø": "o", "Ø": "o", "æ": "ae", "ß": "ss", "ł": "l", "đ": "d"})


def build_world(seed: int, contacts: int) -> World:
    """The staff, the fixed cast, then generated companies until there are ``contacts`` customers.

    The world depends on nothing but its arguments, so mail and calendars made
    with the same seed and ``contacts`` name the same people.
    """
    rng = random.Random(f"{seed}:world")
    customers = list(CAST[:contacts])
    leads = {p.company: staff_member(_CAST_LEADS[p.company]) for p in customers}
    emails = {p.email for p in customers}
    domains = {c.domain for c in leads}
    while len(customers) < contacts:
        if rng.random() < 0.06:
            person = _free_mail_contact(rng, emails)
            company = person.company
            people = [person]
        else:
            company = _new_company(rng, domains)
            size = min(rng.choice((1, 1, 2, 2, 3, 4, 5, 6)), contacts - len(customers))
            people = [_new_contact(rng, company, emails) for _ in range(size)]
        customers.extend(people)
        leads[company] = staff_member(rng.choices(SALES, weights=(5, 2, 4))[0])
    colleagues: dict[Company, list[Person]] = {}
    for person in customers:
        colleagues.setdefault(person.company, []).append(person)
    return World(
        staff=STAFF,
        customers=tuple(customers),
        leads=leads,
        colleagues={c: tuple(ps) for c, ps in colleagues.items()},
    )


def staff_member(email: str) -> Person:
    return next(p for p in STAFF if p.email == email)


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())


def _new_company(rng: random.Random, domains: set[str]) -> Company:
    for attempt in range(50):
        word, industry = rng.choice(COMPANY_WORDS), rng.choice(INDUSTRIES)
        slug = _ascii_slug(word) + (_ascii_slug(industry) if rng.random() < 0.5 else "")
        if attempt > 20:
            slug += str(rng.randint(2, 99))
        if slug + ".example" not in domains:
            break
    domains.add(slug + ".example")
    tz = rng.choices([z for z, _ in _ZONES], weights=[w for _, w in _ZONES])[0]
    lang = {"Europe/Berlin": "de", "Europe/Paris": "fr"}.get(tz, "en")
    lang = lang if rng.random() < 0.4 else "en"
    suffix = rng.choice(SUFFIXES)
    name = f"{word} {industry}" + (f" {suffix}" if suffix else "")
    mail_host = rng.choice(("", "", "", "", "", "", "mail.", "eu.", "corp."))
    return Company(name, mail_host + slug + ".example", tz, lang)


def _new_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def _unique_email(rng: random.Random, local: str, domain: str, emails: set[str]) -> str:
    email = f"{local}@{domain}"
    while email in emails:
        email = f"{local}{rng.randint(2, 999)}@{domain}"
    emails.add(email)
    return email


def _new_contact(rng: random.Random, company: Company, emails: set[str]) -> Person:
    first, last = _new_name(rng)
    f, l_ = _ascii_slug(first), _ascii_slug(last)
    local = rng.choice((f"{f}.{l_}", f"{f}.{l_}", f"{f[0]}{l_}", f, f"{f}_{l_}", f"{f}{l_[0]}"))
    client = rng.choices([c for c, _ in _CLIENTS], weights=[w for _, w in _CLIENTS])[0]
    charset = "utf-8"
    if company.lang != "en" and client in ("outlook", "thunderbird") and rng.random() < 0.5:
        charset = "iso-8859-1"
    elif client == "outlook" and rng.random() < 0.15:
        charset = "windows-1252"
    return Person(
        f"{first} {last}",
        _unique_email(rng, local, company.domain, emails),
        rng.choice(TITLES),
        _phone(rng, company.tz),
        company,
        client,
        charset,
    )


def _free_mail_contact(rng: random.Random, emails: set[str]) -> Person:
    first, last = _new_name(rng)
    domain = rng.choice(FREE_MAIL)
    local = f"{_ascii_slug(first)}.{_ascii_slug(last)}{rng.randint(1, 99)}"
    company = Company(f"{first} {last}", domain)
    return Person(
        f"{first} {last}",
        _unique_email(rng, local, domain, emails),
        rng.choice(("Independent Consultant", "Freelance Data Analyst", "Advisor")),
        _phone(rng, LONDON),
        company,
        rng.choice(("gmail", "apple", "html")),
    )


def _phone(rng: random.Random, tz: str) -> str:
    """A number from the ranges reserved for fiction, so no real line is ever printed."""
    if tz.startswith("America/"):
        return f"+1 {rng.choice((212, 312, 415, 617))} 555 01{rng.randint(0, 99):02d}"
    if tz == "Europe/Berlin":
        return f"+49 30 23125 {rng.randint(0, 999):03d}"
    if tz == "Europe/Paris":
        return f"+33 1 99 00 {rng.randint(0, 99):02d} {rng.randint(0, 99):02d}"
    return f"+44 20 7946 0{rng.randint(0, 999):03d}"
