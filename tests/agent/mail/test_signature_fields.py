"""Signature fields read right: labels in many languages, what is not a phone, titles,
companies, websites, hostile input, and the scores on real signatures.

The tables are written for the rules; the fixtures under
tests/fixtures/signatures/ are real messages from other projects (see its
README.md): the ``tuned`` split is held to the figures measured when the
rules were written, the ``held_out`` split (never tuned on) to what it
measured, so that both keep measuring. ``bench/signatures.py`` prints them.
"""

from __future__ import annotations

import json
import time

import pytest

from agent.mail.signature_fields import SIGNATURE_MAX_LINES, SignatureFields, read_signature
from tests.support.paths import FIXTURES

SIGNATURES = FIXTURES / "signatures"
BODY = "Hi Ann,\n\nthe offer is attached; let me know what you think.\n\n"


def _read(signature: str, sender: str = "Jane Roe <jane@acme.example>") -> SignatureFields:
    return read_signature(BODY + signature, sender)


# --- phones -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "number"),
    [
        ("Tel: +49 89 1234567", "+49 89 1234567"),
        ("Tel.: +49 (0) 89 / 123 456-0", "+49 (0) 89 / 123 456-0"),
        ("Phone: (555) 346-9947", "(555) 346-9947"),
        ("Mobile: +44 7700 900123", "+44 7700 900123"),
        ("Mob. 07700 900123", "07700 900123"),
        ("Cell 555.931.0702", "555.931.0702"),
        ("Fon: 030 12345678", "030 12345678"),
        ("Telefon 030 12345678", "030 12345678"),
        ("Handy: 0171 2345678", "0171 2345678"),
        ("Mobil: +49 171 2345678", "+49 171 2345678"),
        ("Tél. : +33 1 23 45 67 89", "+33 1 23 45 67 89"),
        ("Portable : 06 12 34 56 78", "06 12 34 56 78"),
        ("Móvil: +34 612 345 678", "+34 612 345 678"),
        ("Teléfono: 91 123 45 67", "91 123 45 67"),
        ("M: +1 415 555 0100", "+1 415 555 0100"),
        ("T: +1 415 555 0199", "+1 415 555 0199"),
        ("t. 555-931-0702", "555-931-0702"),
        ("📱 +1 555-0123", "+1 555-0123"),
        ("Tel:+41443334455", "+41443334455"),
        ("Tel - 0123 456789", "0123 456789"),
        ("+44   20  7946 0958", "+44 20 7946 0958"),
        ("07759129909", "07759129909"),
    ],
)
def test_labelled_and_lone_numbers_are_phones(line: str, number: str) -> None:
    assert _read(f"Jane Roe\n{line}").phones == (number,)


def test_numbers_in_one_line_are_read_apart_and_fax_is_not_a_phone() -> None:
    fields = _read("Jane Roe\nT: +1 415 555 0199 | M: +1 415 555 0100 | F: +1 415 555 0111")
    assert fields.phones == ("+1 415 555 0199", "+1 415 555 0100")
    italian = _read("Jane Roe\ntel 0123-456789 fax 0123-456780 e-mail info@client.it")
    assert italian.phones == ("0123-456789",)


def test_the_same_number_twice_is_one_phone() -> None:
    assert _read("Jane Roe\nTel 030 1234567\nPhone: 030 1234567").phones == ("030 1234567",)


@pytest.mark.parametrize(
    "line",
    [
        "15.03.2024",
        "2024-03-15",
        "03/06/2024 - Current",
        "75015 Paris",
        "Order no. 12345678",
        "Bestellnummer: 4711 0815 99",
        "Registered No. 214436 in England and Wales.",
        "Our ref: 22105696",
        "12345678901",
        "Invoice 2024/000123",
        "Fax: +49 89 1234568",
        "IBAN DE89 3704 0044 0532 0130 00",
        "Tel: 12345",
        "Tel: +49 89 12345678901234567",
        "Mobile: 1+2345678",
    ],
)
def test_what_is_not_a_phone(line: str) -> None:
    assert _read(f"Jane Roe\n{line}").phones == ()


def test_phones_in_quoted_history_are_not_read() -> None:
    text = (
        "Thanks, see you then.\n\nJane\n\n"
        "On Mon, 2 Mar 2026 at 09:00, Bob <bob@other.example> wrote:\n"
        "> Bob Other\n> Sales Director\n> Tel: +1 415 555 0100\n"
    )
    assert read_signature(text, "Jane Roe <jane@acme.example>") == SignatureFields()


def test_a_number_in_the_message_is_not_a_signature_phone() -> None:
    text = "Call me on +1 415 555 0100 tomorrow, or later this week if that suits you better."
    assert read_signature(text, "Jane Roe").phones == ()


# --- title and company ------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "title"),
    [
        ("Best regards,\nJane Roe\nSales Director", "Sales Director"),
        ("Jane Roe\nHead of Partnerships", "Head of Partnerships"),
        ("Jane Roe | VP Engineering", "VP Engineering"),
        ("*Jane Roe | Director, Product Management*", "Director, Product Management"),
        ("Mit freundlichen Grüßen\nJane Roe\nGeschäftsführerin", "Geschäftsführerin"),
        ("Mit freundlichen Grüßen\n\nJane Roe\nLeiterin Einkauf", "Leiterin Einkauf"),
        ("Cordialement,\nJane Roe\nDirectrice commerciale", "Directrice commerciale"),
        ("Cordialement,\nJane Roe\nResponsable des achats", "Responsable des achats"),
        ("Saludos cordiales,\nJane Roe\nDirector comercial", "Director comercial"),
        ("Un saludo,\nJane Roe\nGerente de ventas", "Gerente de ventas"),
        ("**Jane Roe**,\nImplementation Specialist", "Implementation Specialist"),
        ("Jane Roe\nCustomer Success", "Customer Success"),
        ("--\nJane\nChief Executive Officer", "Chief Executive Officer"),
    ],
)
def test_titles(signature: str, title: str) -> None:
    assert _read(signature).title == title


def test_without_the_sender_a_line_of_title_words_is_the_title() -> None:
    fields = read_signature(BODY + "Regards,\nJ. R.\nSenior Account Manager\nAcme Ltd", "")
    assert (fields.title, fields.company) == ("Senior Account Manager", "Acme Ltd")


@pytest.mark.parametrize(
    "signature",
    [
        "Regards,\nJane Roe\nsent from the train",
        "Regards,\nJane Roe\nSOME MORE TEXT HERE TODAY AND TOMORROW",
        "Regards,\nJane Roe\nWhat do you think about the offer?",
        "Regards,\nJane Roe\nSent from my iPhone",
        "Regards,\nJane Roe\njane@acme.example",
        "Regards,\nJane Roe\n+1 415 555 0100",
        "Regards,\nJane Roe",
        "Thanks!",
    ],
)
def test_no_title_is_invented(signature: str) -> None:
    assert _read(signature).title is None


@pytest.mark.parametrize(
    ("signature", "title", "company"),
    [
        ("Jane Roe\nCEO at Pandaland", "CEO", "Pandaland"),
        ("Jane Roe\nCEO @ Acme !", "CEO", "Acme"),
        ("Jane Roe\nSenior Developer\nExample Corp", "Senior Developer", "Example Corp"),
        (
            "Jane Roe\nHR Administrator\n**Childbase Partnership**",
            "HR Administrator",
            "Childbase Partnership",
        ),
        ("Jane Roe | CTO | Acme Robotics", "CTO", "Acme Robotics"),
        (
            "Jane Roe\nGeschäftsführer\nMüller & Söhne GmbH",
            "Geschäftsführer",
            "Müller & Söhne GmbH",
        ),
        ("Jane Roe\nGerente\nDistribuciones Norte S.L.", "Gerente", "Distribuciones Norte S.L."),
        ("Jane Roe\nDirecteur\nAtelier Blanc SARL", "Directeur", "Atelier Blanc SARL"),
        (
            "Jane Roe\nEngineer\nNordic Tools AB\nwww.nordictools.example",
            "Engineer",
            "Nordic Tools AB",
        ),
    ],
)
def test_companies(signature: str, title: str, company: str) -> None:
    fields = _read(signature)
    assert (fields.title, fields.company) == (title, company)


def test_a_sentence_naming_a_company_is_no_company_line() -> None:
    text = "Regards,\nJane Roe\n\nbet-at-home.com Internet Ltd. ist ein zugelassener Veranstalter."
    assert read_signature(text, "Jane Roe").company is None


# --- website ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "host"),
    [
        ("www.acme.example", "acme.example"),
        ("https://www.acme.example/about?x=1", "acme.example"),
        ("Web: http://shop.acme.example:8080/", "shop.acme.example"),
        ("W: WWW.ACME.EXAMPLE", "acme.example"),
    ],
)
def test_website_is_the_host(line: str, host: str) -> None:
    assert _read(f"Jane Roe\n{line}").website == host


@pytest.mark.parametrize(
    "line",
    [
        "![logo](https://cdn.example/logo.png)",
        "Sent from TypeApp<http://www.typeapp.com/r?b=2621>",
        "jane@acme.example",
        "http://",
    ],
)
def test_no_website(line: str) -> None:
    assert _read(f"Jane Roe\n{line}").website is None


# --- the block and hostile input -------------------------------------------


def test_a_message_without_a_signature_gives_nothing() -> None:
    assert read_signature("Yes, Tuesday works.", "Jane Roe").empty
    assert read_signature("", "").empty


def test_only_the_last_lines_are_read() -> None:
    filler = "\n".join(f"line {n} of the message text" for n in range(SIGNATURE_MAX_LINES))
    text = f"Jane Roe\nSales Director\nTel: +1 415 555 0100\n\n{filler}"
    assert read_signature(text, "Jane Roe").empty


@pytest.mark.parametrize(
    "text",
    [
        "\n".join(["Tel: +1 415 555 0100"] * 10_000),
        "\n".join(["Jane Roe", "Sales Director"] * 5_000),
        "x" * 1_000_000,
        "Tel: " + "1 " * 500_000,
        "Jane Roe | " * 100_000,
        ">" * 1_000_000,
        "www." + "a." * 500_000,
        ("-- \n" + "9" * 200 + "\n") * 5_000,
    ],
    ids=[
        "10k-phone-lines",
        "10k-name-lines",
        "1MB-line",
        "1MB-digits",
        "separators",
        "quotes",
        "url",
        "delims",
    ],
)
def test_hostile_input_finishes_fast(text: str) -> None:
    started = time.perf_counter()
    fields = read_signature(text, "Jane Roe <jane@acme.example>")
    assert time.perf_counter() - started < 2.0
    assert len(fields.phones) <= SIGNATURE_MAX_LINES
    assert fields.title is None or len(fields.title) <= 80


# --- real signatures, scored ------------------------------------------------


def _split(name: str) -> dict[str, dict[str, object]]:
    expected: dict[str, dict[str, object]] = json.loads(
        (SIGNATURES / name / "expected.json").read_text("utf-8")
    )
    return expected


def _exact_shares(split: str) -> dict[str, float]:
    hits = {"title": 0, "phones": 0}
    cases = _split(split)
    for name, case in cases.items():
        text = (SIGNATURES / split / name).read_text("utf-8")
        fields = read_signature(text, str(case["sender"]))
        hits["title"] += fields.title == case["title"]
        hits["phones"] += set(fields.phones) == set(case["phones"])  # type: ignore[call-overload]
    return {field: hit / len(cases) for field, hit in hits.items()}


FLOORS = {
    "tuned": {"title": 0.9, "phones": 0.95},
    "held_out": {"title": 0.9, "phones": 0.95},
}
"""Just under what was measured (tuned: title 21/23, phones 23/23; held out: title 17/18,
phones 18/18). The held-out floor is a measurement, not a target: never tune on it."""


@pytest.mark.parametrize("split", sorted(FLOORS))
def test_exact_match_shares_stay_above_their_floors(split: str) -> None:
    shares = _exact_shares(split)
    for field, floor in FLOORS[split].items():
        assert shares[field] >= floor, (split, field, shares[field])


def test_every_case_has_its_file_a_language_and_a_source() -> None:
    languages: set[object] = set()
    for split in FLOORS:
        cases = _split(split)
        assert (SIGNATURES / split / "expected.json").is_file()
        for name, case in cases.items():
            assert (SIGNATURES / split / name).is_file(), name
            assert case["source"] and case["language"]
            languages.add(case["language"])
    assert {"en", "de", "fr", "es"} <= languages
    assert sum(len(_split(split)) for split in FLOORS) >= 40
