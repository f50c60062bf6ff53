"""Participant matching: address normalization, companies by domain, direction, names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.mail.addresses import (
    FreeMail,
    addresses,
    company_domain,
    direction,
    is_automated_address,
    is_internal,
    load_free_mail,
    normalize_domain,
    normalize_email,
    registrable_domain,
    split_name,
)
from connectors.records import Address
from tests.support.paths import FIXTURES

FLANKER = FIXTURES / "flanker"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bob@Example.COM", "bob@example.com"),
        ("  bob@example.com \n", "bob@example.com"),
        ("<bob@example.com>", "bob@example.com"),
        ("bob@example.com.", "bob@example.com"),
        ("jöhn@mächine.example", "jöhn@xn--mchine-bua.example"),
        ("a@MÄCHINE.example", "a@xn--mchine-bua.example"),
        ("a@xn--mchine-bua.example", "a@xn--mchine-bua.example"),
        ("a@faß.de", "a@xn--fa-hia.de"),
        ("a@bücher.co.uk", "a@xn--bcher-kva.co.uk"),
        ("First.Last+crm@gmail.com", "firstlast@gmail.com"),
        ("f.i.r.s.t@GoogleMail.com", "first@gmail.com"),
        ("first+a+b@googlemail.com", "first@gmail.com"),
        ("first.last+news@example.com", "first.last+news@example.com"),
        ("x_y-z@sub_domain.example.org", "x_y-z@sub_domain.example.org"),
        ("first..last@example.com", "first..last@example.com"),
        ("plain", None),
        ("@example.com", None),
        ("bob@", None),
        (".@example.com", None),
        ("+tag@gmail.com", None),
        ("a@b@example.com", None),
        ("hello world@example.com", None),
        ('"quoted"@example.com', None),
        ("bob@localhost", None),
        ("bob@192.168.0.1", None),
        ("bob@[192.168.0.1]", None),
        ("bob@-example.com", None),
        ("bob@example..com", None),
        ("bob\ufffd@example.com", None),
        ("a" * 250 + "@example.com", None),
    ],
    ids=[
        "lower-case",
        "whitespace",
        "angle-brackets",
        "trailing-dot",
        "idna-domain",
        "idna-upper-case",
        "punycode-kept",
        "idna2008-sharp-s",
        "idna-under-cctld",
        "gmail-dots-and-tag",
        "googlemail-folds-to-gmail",
        "gmail-several-plus",
        "plus-kept-elsewhere",
        "underscores",
        "double-dot-accepted",
        "no-at",
        "no-local",
        "no-domain",
        "only-dots",
        "gmail-only-tag",
        "two-at",
        "space",
        "quoted-local",
        "single-label",
        "ip-address",
        "ip-literal",
        "label-hyphen",
        "empty-label",
        "replacement-char",
        "too-long",
    ],
)
def test_normalize_email(value: str, expected: str | None) -> None:
    assert normalize_email(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("first.last+news@example.com", "first.last@example.com"),
        ("First.Last+a@Gmail.com", "firstlast@gmail.com"),
        ("plain@example.com", "plain@example.com"),
    ],
    ids=["other-domain", "gmail", "no-tag"],
)
def test_normalize_email_strips_plus_tags_on_request(value: str, expected: str) -> None:
    assert normalize_email(value, strip_plus_tags=True) == expected


@given(st.emails())
def test_normalize_email_is_idempotent(value: str) -> None:
    once = normalize_email(value)
    assert once is None or normalize_email(once) == once


def _dataset(name: str) -> list[str]:
    lines = (FLANKER / name).read_text(encoding="utf-8").splitlines()
    return [line.split("  #")[0].strip() for line in lines if line.strip()[:1] not in ("", "#")]


def _only_dots_misplaced(value: str) -> bool:
    local = value.rpartition("@")[0]
    return local.startswith(".") or local.endswith(".") or ".." in local


_PLAIN = re.compile(r"^[^\"\s()<>@\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z][A-Za-z0-9-]*$")


def test_flanker_invalid_addresses_are_refused_but_for_dot_placement() -> None:
    """Only misplaced dots (accepted on purpose) and two lenient domain forms get through."""
    accepted = {
        value
        for value in _dataset("mailbox_invalid.txt")
        if normalize_email(value) is not None and not _only_dots_misplaced(value)
    }
    assert accepted == {
        "gatsby@f.sc.ot.t.f.i.tzg.era.l.d.",
        "a@bar.com.",
        "test@xn--example.com",
    }


def test_flanker_valid_plain_addresses_are_accepted() -> None:
    plain = [value for value in _dataset("mailbox_valid.txt") if _PLAIN.match(value)]
    assert len(plain) > 30
    assert [value for value in plain if normalize_email(value) is None] == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "=?UTF-8?B?Rm9vLCBCYXI=?= <foo.bar@example.com>",
            (Address("foo.bar@example.com", "Foo, Bar"),),
        ),
        (
            '"=?utf-8?q?J=C3=B6rg_M=C3=BCller?=" <JM@Example.com>',
            (Address("jm@example.com", "Jörg Müller"),),
        ),
        (
            '"Doe, John" <john@example.com>, jane@example.com',
            (Address("john@example.com", "Doe, John"), Address("jane@example.com", "")),
        ),
        ("'Jane Roe' <jane@example.com>", (Address("jane@example.com", "Jane Roe"),)),
        ('"  Jane   Roe " <jane@example.com>', (Address("jane@example.com", "Jane Roe"),)),
        ("bob@example.com <bob@example.com>", (Address("bob@example.com", ""),)),
        (
            "Bob <bob@example.com>, BOB@example.com, Robert <bob@example.com>",
            (Address("bob@example.com", "Bob"),),
        ),
        (
            "First <first.last@gmail.com>, firstlast+x@googlemail.com",
            (Address("firstlast@gmail.com", "First"),),
        ),
        ("undisclosed-recipients:;", ()),
        (
            "Team: ann@example.com, Ben <ben@example.com>;, cy@example.com",
            (
                Address("ann@example.com", ""),
                Address("ben@example.com", "Ben"),
                Address("cy@example.com", ""),
            ),
        ),
        ("not an address, @example.com, bob@localhost", ()),
        ("Jöhn <jöhn@mächine.example>", (Address("jöhn@xn--mchine-bua.example", "Jöhn"),)),
        ("", ()),
    ],
    ids=[
        "rfc2047-base64-with-comma",
        "rfc2047-quoted-printable-in-quotes",
        "quoted-comma-name",
        "single-quotes",
        "inner-whitespace",
        "name-is-the-address",
        "duplicates-keep-first",
        "gmail-folded-duplicates",
        "empty-group",
        "group-members",
        "invalid-dropped",
        "utf8-header",
        "empty",
    ],
)
def test_addresses(header: str, expected: tuple[Address, ...]) -> None:
    assert addresses(header) == expected


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("www.airbnb.co.uk", "airbnb.co.uk"),
        ("mail.eu.acme.com", "acme.com"),
        ("acme.com", "acme.com"),
        ("WWW.Airbnb.CO.UK.", "airbnb.co.uk"),
        ("mail.bücher.de", "xn--bcher-kva.de"),
        ("shop.myshopify.com", "shop.myshopify.com"),
        ("a.b.example.com.au", "example.com.au"),
        ("co.uk", "co.uk"),
    ],
    ids=[
        "co-uk",
        "deep-subdomain",
        "already-registrable",
        "case-and-trailing-dot",
        "idna",
        "private-suffix",
        "com-au",
        "public-suffix-itself",
    ],
)
def test_registrable_domain(domain: str, expected: str) -> None:
    assert registrable_domain(domain) == expected


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("ann@www.airbnb.co.uk", "airbnb.co.uk"),
        ("ann@mail.eu.acme.com", "acme.com"),
        ("ann@gmail.com", None),
        ("ann@googlemail.com", None),
        ("ann@yahoo.co.uk", None),
        ("ann@mail.yahoo.com", None),
        ("ann@yahoo.fr", None),
        ("ann@gmx.de", None),
        ("ann@gmx.net", None),
        ("ann@hotmail.co.uk", None),
        ("ann@live.fr", None),
        ("ann@yandex.ru", None),
        ("ann@web.de", None),
        ("ann@proton.me", None),
        ("ann@qq.com", None),
        ("abc@privaterelay.appleid.com", None),
        ("ann@notyahoo.com", "notyahoo.com"),
        ("ann@yahoo-inc.com", "yahoo-inc.com"),
        ("ann@co.uk", None),
        ("not an address", None),
    ],
    ids=[
        "airbnb-co-uk",
        "subdomain",
        "gmail",
        "googlemail",
        "yahoo-star-co-uk",
        "yahoo-subdomain",
        "yahoo-star-fr",
        "gmx-star-de",
        "gmx-star-net",
        "hotmail-star",
        "live-star",
        "yandex-star",
        "web-de",
        "proton",
        "qq",
        "apple-relay",
        "pattern-is-a-whole-label",
        "pattern-is-not-a-prefix",
        "bare-public-suffix",
        "invalid",
    ],
)
def test_company_domain(email: str, expected: str | None) -> None:
    assert company_domain(email, load_free_mail()) == expected


def test_free_mail_config_adds_and_removes() -> None:
    free_mail = load_free_mail(extra=["example-isp.net", "freebie.*"], remove=["gmx.de", "msn.com"])
    assert company_domain("a@example-isp.net", free_mail) is None
    assert company_domain("a@mail.example-isp.net", free_mail) is None
    assert company_domain("a@freebie.co.uk", free_mail) is None
    assert company_domain("a@gmx.de", free_mail) == "gmx.de"
    assert company_domain("a@gmx.net", free_mail) is None
    assert company_domain("a@msn.com", free_mail) == "msn.com"


def test_removing_a_star_pattern() -> None:
    assert company_domain("a@yahoo.fr", load_free_mail(remove=["yahoo.*"])) == "yahoo.fr"


def test_shipped_free_mail_list_covers_the_well_known_providers() -> None:
    free_mail = load_free_mail()
    assert isinstance(free_mail, FreeMail)
    assert len(free_mail.domains) + len(free_mail.names) >= 40
    for domain in ("outlook.com", "icloud.com", "aol.com", "mail.ru", "naver.com", "163.com"):
        assert free_mail.is_free(domain), domain


@pytest.mark.parametrize(
    "pattern", ["not a domain", "mail.yahoo.*", "*.yahoo.com", "localhost"], ids=str
)
def test_free_mail_rejects_bad_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match="free-mail pattern"):
        load_free_mail(extra=[pattern])


@pytest.mark.parametrize(
    ("email", "internal", "expected"),
    [
        ("ann@example.com", ["example.com"], True),
        ("ann@eu.example.com", ["example.com"], True),
        ("ann@EXAMPLE.com", ["Example.COM."], True),
        ("ann@notexample.com", ["example.com"], False),
        ("ann@example.com.evil.org", ["example.com"], False),
        ("ann@example.org", ["example.com", "example.org"], True),
        ("ann@xn--mchine-bua.example", ["mächine.example"], True),
        ("ann@example.com", [], False),
        ("not an address", ["example.com"], False),
    ],
    ids=[
        "same",
        "subdomain",
        "case-and-dot",
        "suffix-is-not-subdomain",
        "prefix-is-not-domain",
        "second-domain",
        "idna",
        "no-internal-domains",
        "invalid",
    ],
)
def test_is_internal(email: str, internal: list[str], expected: bool) -> None:
    assert is_internal(email, internal) is expected


_ME = Address("me@example.com")
_COLLEAGUE = Address("colleague@eu.example.com")
_CLIENT = Address("client@customer.org")
_OTHER_CLIENT = Address("other@vendor.net")


@pytest.mark.parametrize(
    ("sender", "recipients", "expected"),
    [
        (_ME, [_CLIENT], "outbound"),
        (_ME, [_COLLEAGUE, _CLIENT], "outbound"),
        (_COLLEAGUE, [_CLIENT], "outbound"),
        (_ME, [_COLLEAGUE], "internal"),
        (_COLLEAGUE, [_ME], "internal"),
        (_ME, [], "internal"),
        (_CLIENT, [_ME], "inbound"),
        (_CLIENT, [_ME, _COLLEAGUE], "inbound"),
        (_CLIENT, [_OTHER_CLIENT], "inbound"),
        (None, [_ME], "inbound"),
        (None, [], "inbound"),
    ],
    ids=[
        "owner-to-client",
        "owner-to-colleague-and-client",
        "colleague-to-client",
        "owner-to-colleague",
        "colleague-to-owner",
        "owner-note-to-self",
        "client-to-owner",
        "client-to-team",
        "outsiders-only",
        "no-sender",
        "nothing",
    ],
)
def test_direction(sender: Address | None, recipients: list[Address], expected: str) -> None:
    assert direction(sender, recipients, "me@example.com", ["example.com"]) == expected


def test_direction_counts_the_mailbox_owner_as_ours_on_any_domain() -> None:
    owner = Address("seller@gmail.com")
    assert direction(owner, [_CLIENT], "seller@gmail.com", ["example.com"]) == "outbound"
    assert direction(_CLIENT, [owner], "seller@gmail.com", ["example.com"]) == "inbound"


@pytest.mark.parametrize(
    ("display_name", "expected"),
    [
        ("John Smith", ("John", "Smith")),
        ("Smith, John", ("John", "Smith")),
        ("Dr. Jane Doe", ("Jane", "Doe")),
        ("Prof. Dr. Hans-Peter Müller", ("Hans-Peter", "Müller")),
        ("Mr John Smith Jr.", ("John", "Smith")),
        ("van der Berg, Jan", ("Jan", "van der Berg")),
        ("JOHN SMITH", ("John", "Smith")),
        ("megan", ("Megan", "")),
        ("Иван Петров", ("Иван", "Петров")),
        ("John Smith | Acme", ("John", "Smith")),
        ("  'Jane Roe' ", ("Jane", "Roe")),
        ("", ("", "")),
        ("bob@example.com", ("", "")),
        ("Mikel@Lindsaar", ("", "")),
        ("Support Team", ("", "")),
        ("Acme GmbH", ("", "")),
        ("SALES", ("", "")),
        ("Mail Delivery Subsystem", ("", "")),
        ("Room 42", ("", "")),
        ("山田太郎", ("", "")),
    ],
    ids=[
        "first-last",
        "last-comma-first",
        "title",
        "two-titles",
        "title-and-suffix",
        "particle",
        "all-caps-recapitalized",
        "single-lower-case",
        "cyrillic",
        "affiliation-dropped",
        "quoted",
        "empty",
        "email-as-name",
        "at-sign",
        "role",
        "company",
        "all-caps-role",
        "system-name",
        "digits",
        "uncased-script",
    ],
)
def test_split_name(display_name: str, expected: tuple[str, str]) -> None:
    assert split_name(display_name) == expected


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("noreply@example.com", True),
        ("no-reply@example.com", True),
        ("no_reply@example.com", True),
        ("do-not-reply@example.com", True),
        ("DoNotReply@example.com", True),
        ("noreply-dmarc-support@google.com", True),
        ("calendar-noreply@google.com", True),
        ("mailer-daemon@example.com", True),
        ("MAILER-DAEMON@example.com", True),
        ("postmaster@example.com", True),
        ("notifications@github.com", True),
        ("calendar-notification@google.com", True),
        ("list-bounces@lists.example.org", True),
        ("bounces+12345-abcd=example.com@sendgrid.net", True),
        ("bounce-mc.us5_1234.5678-ann=example.com@mail.mcsv.net", True),
        ("123+someone@users.noreply.github.com", True),
        ("newsletter@example.com", True),
        ("alerts@example.com", False),
        ("support@example.com", False),
        ("info@example.com", False),
        ("sales@example.com", False),
        ("noreen@example.com", False),
        ("bouncer.bob@example.com", False),
        ("replies@example.com", False),
    ],
    ids=lambda value: str(value),
)
def test_is_automated_address(email: str, expected: bool) -> None:
    assert is_automated_address(email) is expected


@pytest.mark.parametrize(
    ("domain", "expected"),
    [("Example.COM.", "example.com"), ("mächine.example", "xn--mchine-bua.example"), ("", None)],
    ids=["case-and-dot", "idna", "empty"],
)
def test_normalize_domain(domain: str, expected: str | None) -> None:
    assert normalize_domain(domain) == expected


@given(st.text(max_size=300))
def test_addresses_never_raise_and_return_normalized_emails(header: str) -> None:
    for address in addresses(header):
        assert normalize_email(address.email) == address.email
