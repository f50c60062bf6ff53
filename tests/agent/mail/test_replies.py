"""Replies: quoted history and signatures removed from plain text, rule by rule.

The talon and zapier corpora are exercised in tests/agent/mail/test_text_corpora.py.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.mail.replies import reply_text, split_signature, strip_quotes
from agent.mail.text import snippet

REPLIES = [
    (
        "Danke!\n\nAm 02.04.2012 um 14:20 schrieb Max Mustermann <max@example.com>:\n\n> Hallo",
        "Danke!",
        "german",
    ),
    (
        "Danke!\n\nMax Mustermann <max@example.com> schrieb am Mo., 2. Apr. 2012, 14:20:\n"
        "\n> Hallo",
        "Danke!",
        "german-gmail",
    ),
    (
        "Merci\n\nLe lun. 2 avr. 2012 à 14:20, Jean Dupont <jean@example.fr> a écrit :\n> Bonjour",
        "Merci",
        "french",
    ),
    (
        "Merci\n\nLe 2 avr. 2012 à 14:20, Jean <jean@example.fr> a\u202fécrit\u202f:\n> Bonjour",
        "Merci",
        "french-narrow-spaces",
    ),
    (
        "Gracias\n\nEl 2 abr. 2012, a las 14:20, Ana <ana@example.es> escribió:\n> Hola",
        "Gracias",
        "spanish",
    ),
    ("Bedankt\n\nOp 2 apr. 2012 om 14:20 schreef Jan <jan@example.nl>:\n> Hoi", "Bedankt", "dutch"),
    (
        "Bedankt\n\nOp 2 apr. 2012, om 14:20 heeft Jan <jan@example.nl> het volgende geschreven:\n"
        "\n> Hoi",
        "Bedankt",
        "dutch-apple",
    ),
    (
        "Dzięki\n\nW dniu 02.04.2012 14:20, Jan Kowalski pisze:\n> Cześć",
        "Dzięki",
        "polish-thunderbird",
    ),
    (
        "Dzięki\n\npon., 2 kwi 2012 o 14:20 Jan Kowalski <jan@example.pl> napisał(a):\n> Cześć",
        "Dzięki",
        "polish-gmail",
    ),
    ("Tack\n\nDen 2 apr. 2012 kl. 14:20 skrev Anna <anna@example.se>:\n> Hej", "Tack", "swedish"),
    (
        "Tack\n\nmån 2 apr. 2012 kl 14:20 skrev Anna <anna@example.se>:\n> Hej",
        "Tack",
        "swedish-gmail",
    ),
    (
        "Obrigado\n\nEm 2 de abr. de 2012, às 14:20, João <joao@example.pt> escreveu:\n> Olá",
        "Obrigado",
        "portuguese",
    ),
    (
        "Grazie\n\nIl giorno lun 2 apr 2012 alle ore 14:20 Marco <marco@example.it> ha scritto:\n"
        "> Ciao",
        "Grazie",
        "italian",
    ),
    (
        "Спасибо\n\n02.04.2012 14:20, Иван <ivan@example.ru> написал:\n> Привет",
        "Спасибо",
        "russian",
    ),
    (
        "Thanks\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <\nxxx@gmail.com> wrote:\n\n> Hi",
        "Thanks",
        "english-split-over-two-lines",
    ),
    (
        "Thanks\n\nOn Dec 16, 2011, at 12:47 PM, Corey\n<reply@example.com>\nwrote:\n> Hi",
        "Thanks",
        "english-split-over-three-lines",
    ),
    (
        "Thanks\n\n--- On Wed, 4/4/12, Joe <joe@example.com> wrote:\n\nFrom: Joe\nold text",
        "Thanks",
        "yahoo-unquoted-history",
    ),
    (
        "Thanks\n\nOn Mon, Apr 2, 2012, Bob wrote:\nold text pasted without quote marks\nmore",
        "Thanks",
        "attribution-without-quotes-cuts",
    ),
    (
        "On Mon, Apr 2, 2012 at 6:26 PM, Bob <bob@example.com> wrote:\n> question?\n\nanswer",
        "answer",
        "bottom-post",
    ),
    (
        "> first question\nfirst answer\n> second question\nsecond answer",
        "first answer\n\nsecond answer",
        "inline-answers",
    ),
    (
        "Sure.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Ann\nSubject: Hi\n\nold",
        "Sure.",
        "outlook-original-message",
    ),
    (
        "Sure.\n\n________________________________\nFrom: Bob <bob@example.com>\nSent: Monday, "
        "April 2, 2012 5:44 PM\nTo: Ann\nSubject: Hi\n\nold",
        "Sure.",
        "outlook-header-block",
    ),
    (
        "Sure.\n\nVon: Bob [mailto:bob@example.com]\nGesendet: Montag, 2. April 2012 17:44\n"
        "An: Ann\nBetreff: Hallo\n\nalt",
        "Sure.",
        "outlook-german-header-block",
    ),
    (
        "Sure.\n\nDe : Bob\nEnvoyé : lundi 2 avril 2012 17:44\nÀ : Ann\nObjet : Salut\n\nvieux",
        "Sure.",
        "outlook-french-header-block",
    ),
    (
        "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\n"
        "Date: Mon, Apr 2, 2012\nSubject: Hi\nTo: Ann\n\nold",
        "FYI",
        "gmail-forward",
    ),
    (
        "See below.\n\nBegin forwarded message:\n\nFrom: Bob\nSubject: x\n\nold",
        "See below.",
        "apple-forward",
    ),
    ("Hello\n\n-- \nAnn Example\nACME Inc.", "Hello", "sig-delimiter"),
    ("Hello\n\nSent from my iPhone", "Hello", "sent-from-iphone"),
    ("Hello\n\nVon meinem iPhone gesendet", "Hello", "german-iphone"),
    ("Hello\n\nEnvoyé de mon iPhone", "Hello", "french-iphone"),
    ("Hello\n\nGet Outlook for iOS", "Hello", "outlook-mobile"),
    ("Hello\n\nSent from my Samsung Galaxy smartphone.", "Hello", "samsung"),
    (
        "Hello\n\nBest,\nAnn\n\nann@example.com\n+1 555 123 4567\nwww.example.com",
        "Hello\n\nBest,\nAnn",
        "contact-block",
    ),
    (
        "Hello,\nline two   \n\nparagraph two\t",
        "Hello,\nline two\n\nparagraph two",
        "trailing-whitespace-stripped-breaks-kept",
    ),
    (
        "On the topic of pricing, here is my view:\n\nWe can do 10%.",
        "On the topic of pricing, here is my view:\n\nWe can do 10%.",
        "on-but-not-attribution",
    ),
    (
        "One question: when?\n\nOn Tuesday we meet.",
        "One question: when?\n\nOn Tuesday we meet.",
        "one-is-not-on",
    ),
    (
        "From: the whole team, thanks!\n\nSee you.",
        "From: the whole team, thanks!\n\nSee you.",
        "single-from-line-kept",
    ),
    ("Use a -- b for options.\n\nBye", "Use a -- b for options.\n\nBye", "dashes-mid-line"),
    ("Sent the contract yesterday.", "Sent the contract yesterday.", "sent-is-not-a-signature"),
    (
        "Original message\n\nI have attached the original message.",
        "Original message\n\nI have attached the original message.",
        "typed-original-message-is-text",
    ),
    (
        "Tak.\n\nman. 2. jan. 2023 kl. 10.00 Lars Hansen\n<lars@example.dk> skrev:\n\ngammel",
        "Tak.",
        "danish-date-first-wrapped",
    ),
    (
        "Ok\n\n---- On Wed, 24 Feb 2021 14:02:50 +0530 john@example.com wrote ----\n\nold",
        "Ok",
        "zoho-colonless",
    ),
    ("Merci\n\nEnvoyé à partir de Outlook pour iOS", "Merci", "french-outlook-ios"),
    ("", "", "empty"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [case[:2] for case in REPLIES],
    ids=[case[2] for case in REPLIES],
)
def test_reply_text(text: str, expected: str) -> None:
    assert reply_text(text) == expected


def test_reply_text_keeps_crlf_replies_as_lines() -> None:
    assert reply_text("a\r\nb\r\n\r\nOn 1 Jan 2020, X <x@example.com> wrote:\r\n> c") == "a\nb"


def test_strip_quotes_keeps_the_signature() -> None:
    text = "Hello\n\n-- \nAnn\n\nOn 1 Jan 2020, X <x@example.com> wrote:\n> old"
    assert strip_quotes(text) == "Hello\n\n-- \nAnn"


@pytest.mark.parametrize(
    ("text", "sender", "signature"),
    [
        ("Thanks for the call.\n\nCheers,\nAnn", "Ann Example <ann@example.com>", "Cheers,\nAnn"),
        ("Thanks for the call.\n\nCheers,\nAnn", "", ""),
        ("See you.\n\n-Bob", "", "-Bob"),
        ("- apples\n- Pears", "", ""),
        (
            "Hi\n\n____\nlist mailing list\nhttp://lists.example.com/x",
            "",
            "____\nlist mailing list\nhttp://lists.example.com/x",
        ),
        ("Only a name\n\nAnn", "Ann", "Ann"),
        (
            "Bounced.\n\nThe server at mx.example.com refused the message that you sent\n"
            "to ann@example.com; https://example.com/help says what the error means.",
            "",
            "",
        ),
        ("Warning\n\n**********\nfrom host.example.com [60.0.0.61]\nwww.example.com", "", ""),
        ("Ann", "Ann", ""),
    ],
    ids=[
        "valediction-and-sender-name",
        "no-sender-no-guess",
        "dash-signoff",
        "list-is-not-a-signoff",
        "mailing-list-footer",
        "sender-name-alone",
        "prose-with-addresses-is-not-a-signature",
        "asterisk-banner-is-not-a-separator",
        "whole-text-is-never-a-signature",
    ],
)
def test_split_signature(text: str, sender: str, signature: str) -> None:
    body, found = split_signature(text, sender)
    assert found == signature
    assert body == text[: len(text) - len(signature)].rstrip()


@pytest.mark.parametrize(
    "text",
    [
        "On " * 100_000,
        "On 1 Jan 2020 x\n" * 60_000,
        "\n" * 300_000 + "x",
        "> a\n" * 200_000,
        "From: a\nTo: b\nSent: c\n" * 30_000,
        "x\n" + "--\n" * 100_000,
        "x\n\n" + "a@b.example 555-555-5555\n" * 50_000,
        "Sent from my " + "a " * 400_000,
        "=?utf-8?b?" * 100_000,
    ],
    ids=[
        "one-long-on-line",
        "many-attribution-starts",
        "blank-lines",
        "quotes",
        "header-lines",
        "delimiters",
        "contact-lines",
        "long-mobile-line",
        "encoded-word-openers",
    ],
)
def test_reply_text_is_linear_on_hostile_text(text: str) -> None:
    started = time.perf_counter()
    reply_text(text)
    split_signature(text, "Ann <ann@example.com>")
    snippet(text)
    assert time.perf_counter() - started < 3


# --- hostile input ----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    ">",
                    "> quoted",
                    "On Mon, 1 Jan 2020, A <a@b.c> wrote:",
                    "-- ",
                    "--",
                    "-----Original Message-----",
                    "From: A",
                    "Sent: B",
                    "To: C",
                    "Subject: D",
                    "Sent from my iPhone",
                    "____",
                    "-Ann",
                    "",
                    "   ",
                    "wrote:",
                    "a@b.example",
                ]
            ),
        ),
        max_size=30,
    ),
    st.sampled_from(["", "Ann <a@b.c>", "Ann", "@"]),
)
def test_reply_rules_never_raise(lines: list[str], sender: str) -> None:
    text = "\n".join(lines)
    reply = reply_text(text, sender=sender)
    assert all(line == line.rstrip() for line in reply.split("\n"))
    body, _ = split_signature(text, sender)
    assert text.replace("\r\n", "\n").replace("\r", "\n").startswith(body)
    strip_quotes(text)
