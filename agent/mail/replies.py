"""Replies: the new text of a plain-text message, without quoted history or signature.

Mail is hostile input, so the rules work on lines, in one pass, without
backtracking regexes, and text is clipped to ``config.limits.MAX_TEXT_CHARS``: the cost of a
message does not grow with its malice.

1. Quoted history is removed (``strip_quotes``). ``>`` lines go wherever they
   are, so inline answers between quotes survive. An attribution line ("On
   ... wrote:", in a dozen languages and clients, possibly wrapped over three
   lines) goes with the quote that follows it; with no ``>`` quote after it,
   the history was pasted unmarked and everything from it on goes. Outlook's
   "-----Original Message-----" and forward markers, and blocks of
   From/Sent/To/Subject header lines, also cut everything below them.
2. The signature is removed from what is left (``split_signature``): the
   ``-- `` delimiter, "Sent from my ..." lines, a separator line followed by a
   short block of contact details, a "-Name" sign-off, and a trailing
   paragraph that holds contact details (or, given the sender, names them):
   the rules of ``_SIGNATURE_RULES``, in that order, under the limits named
   below the vocabularies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr

from config.limits import MAX_TEXT_CHARS

__all__ = [
    "header_key",
    "normalize_newlines",
    "reply_text",
    "split_signature",
    "strip_quotes",
]


def _phrases(table: str) -> tuple[str, ...]:
    """A vocabulary written as "a | b | c" across lines, for tables that stay readable."""
    return tuple(phrase.strip() for phrase in table.split("|") if phrase.strip())


# --- vocabularies -----------------------------------------------------------


# Attribution lines end with the verb "wrote" in the client's language.
_WROTE_ENDINGS = _phrases(
    """
    wrote: | writes: | schrieb: | a écrit : | a écrit: | escribió: | escribio: | schreef: |
    geschreven: | napisał: | napisała: | napisał(a): | pisze: | skrev: | escreveu: |
    ha scritto: | scrisse: | написал: | написала: | написал(а): | kirjoitti: | írta: |
    napsal: | napsala: | napsal(a): | yazdı: | έγραψε: | kirjutas: | rašė: | rakstīja: |
    a scris: | написа: | napisao je: | napísal:
    """
)
# Languages that put the verb before the name: "Am ... schrieb Max <max@x>:".
_WROTE_MIDDLES = tuple(f" {verb} " for verb in _phrases("schrieb | schreef | skrev | scrisse"))
_ATTRIBUTION_STARTS = tuple(
    f"{word} "
    for word in _phrases(
        "on | am | le | el | op | w dniu | dnia | den | em | il | il giorno | în | dne | päivänä"
    )
)
_ORIGINAL_MARKERS = frozenset(
    _phrases(
        """
        original message | forwarded message | begin forwarded message |
        ursprüngliche nachricht | original-nachricht | originalnachricht |
        weitergeleitete nachricht | anfang der weitergeleiteten nachricht |
        message d'origine | message original | message transféré |
        début du message réexpédié | début du message transféré |
        mensaje original | mensaje reenviado | inicio del mensaje reenviado |
        mensagem original | mensagem encaminhada | início da mensagem reencaminhada |
        messaggio originale | messaggio inoltrato | inizio messaggio inoltrato |
        oorspronkelijk bericht | origineel bericht | doorgestuurd bericht |
        begin doorgestuurd bericht | wiadomość oryginalna | oryginalna wiadomość |
        przekazana wiadomość | ursprungligt meddelande | vidarebefordrat meddelande |
        original meddelelse | videresendt meddelelse | opprinnelig melding |
        videresendt melding | alkuperäinen viesti | välitetty viesti |
        исходное сообщение | пересылаемое сообщение | переадресованное сообщение |
        reply message | original email | forwarded email
        """
    )
)
# Header names as clients write them above a pasted message, by what they mean.
_HEADER_KEYS = {
    "from": _phrases(
        """
        from | von | de | van | od | från | fra | da | от | lähettäjä | feladó | expéditeur |
        remitente | mittente | afzender | nadawca | avsändare | afsender | kimden | od koga
        """
    ),
    "date": _phrases(
        """
        sent | date | datum | gesendet | envoyé | enviado | fecha | data | verzonden | wysłano |
        wysłane | skickat | sendt | отправлено | дата | lähetetty | päivämäärä | inviato |
        dátum | küldve | tarih | gönderildi | sent at | date d'envoi | enviada em
        """
    ),
    "to": _phrases(
        """
        to | an | à | a | para | aan | do | till | til | кому | vastaanottaja | címzett |
        destinataire | destinatario | kime | adresat
        """
    ),
    "cc": _phrases("cc | kopie | copie | cópia | kopia | копия | bcc | cco | kopio"),
    "subject": _phrases(
        """
        subject | betreff | objet | asunto | assunto | onderwerp | temat | ämne | oggetto |
        тема | emne | aihe | tárgy | sujet | konu | předmět
        """
    ),
}
_HEADER_CATEGORY = {key: category for category, keys in _HEADER_KEYS.items() for key in keys}

_MOBILE_SIGNATURES = re.compile(
    r"sent (?:from|with|via|using) (?:my |the |a |an )?\S+(?: \S+){0,4}"
    r"|get outlook for \S+(?: \S+)?"
    r"|(?:envoyé|envoye) (?:de|depuis) (?:mon |ma )?\S+(?: \S+){0,3}"
    r"|von (?:meinem |meiner |mein )?\S+(?: \S+){0,2} gesendet"
    r"|gesendet von (?:meinem |meiner |mein )?\S+(?: \S+){0,3}"
    r"|enviado (?:desde|do|de|con|com) (?:mi |meu |o |el )?\S+(?: \S+){0,3}"
    r"|(?:verzonden|verstuurd) (?:vanaf|met|van) (?:mijn )?\S+(?: \S+){0,3}"
    r"|inviato da(?:l mio)? \S+(?: \S+){0,3}"
    r"|skickat från (?:min )?\S+(?: \S+){0,3}"
    r"|sendt fra (?:min )?\S+(?: \S+){0,3}"
    r"|wysłane z (?:mojego |mojej )?\S+(?: \S+){0,3}"
    r"|отправлено (?:с|из) \S+(?: \S+){0,3}"
    r"|lähetetty \S+(?: \S+){0,3}"
)
_SENT_VERBS = _phrases(
    """
    sent | get | envoy | von | gesendet | enviado | verzonden | verstuurd | inviato | skickat |
    sendt | wysłane | отправлено | lähetetty
    """
)
_PHONE = re.compile(r"\+?\(?\d[\d ().\-/]{5,}\d")
_NOT_PHONE = re.compile(
    r"\d{4}-\d\d-\d\d|\d\d?[./-]\d\d?[./-]\d\d|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
)


# --- limits -----------------------------------------------------------------


ATTRIBUTION_MAX_LINES = 3
"""An attribution wraps over at most this many lines: a long name, address and date do."""
ATTRIBUTION_MAX_LINE_CHARS = 1000
"""A longer line is prose or data, never part of an attribution."""
ATTRIBUTION_MAX_CHARS = 400
"""An attribution, its wrapped lines joined, is no longer: a name, address and date fit."""

MAX_LINES_BELOW_BARE_DELIMITER = 15
"""A "--" that lost its trailing space still opens the signature when at most this many
non-blank lines follow it; higher up in a long text it is more likely punctuation."""
MOBILE_SIGNATURE_LINES = 3
"""How many of the last non-blank lines may hold "Sent from my iPhone": below it come
at most a name or a footer."""
MAX_MOBILE_SIGNATURE_CHARS = 80
"""A "Sent from ..." line longer than this is a sentence, not what a client appends."""
MIN_RULE_CHARS = 4
"""A separator line above a signature block is at least this long ("----"): shorter
dashes are punctuation, and "--" has its own rule."""
MAX_SEPARATED_BLOCK_LINES = 12
"""A block below a separator line is a signature up to this many non-blank lines;
a longer one is content, a table or a pasted text."""
MAX_CONTACT_LINE_CHARS = 100
"""Contact details sit on short lines: on a longer one, an address or a number is prose."""
MAX_SIGNOFF_CHARS = 40
"""A "-Name" sign-off is a name, not a sentence that starts with a dash."""
MAX_SIGNOFF_DASHES = 2
"""A sign-off starts with one or two dashes ("-Tim", "--Tim"); more draw a line."""
MAX_SIGNOFF_WORDS = 4
"""A sign-off names someone in at most this many capitalized words."""
MAX_PARAGRAPH_SIGNATURE_LINES = 8
"""A trailing paragraph of more lines is part of the message, whatever it mentions."""
MAX_PARAGRAPH_SIGNATURE_LINE_CHARS = 80
"""Signature lines are short (a name, a title, a number): one longer line makes prose."""
MAX_PARAGRAPH_SIGNATURE_MEAN_CHARS = 45
"""The mean length of a signature's lines is at most this: prose that mentions an address
and a URL has longer lines on average."""
MIN_PARAGRAPH_CONTACTS = 2
"""A trailing paragraph needs this many lines of contact details to be a signature without
naming the sender: one address or number is often part of the message."""
MIN_PHONE_DIGITS = 7
"""Fewer digits are a number in the text (an amount, a year and a day), not a phone."""
MAX_PHONE_DIGITS = 15
"""The most digits an international phone number has (ITU-T E.164)."""
MAX_STACKED_SIGNATURES = 5
"""How many signatures stacked on one another (a sign-off above a list footer above a
disclaimer) are removed; a bound, so a message of sign-offs costs no more."""


# --- quoted history ---------------------------------------------------------


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR line ends as LF: mail arrives with all three."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _is_blank(line: str) -> bool:
    return not line.strip()


def header_key(line: str) -> str | None:
    """The header category ("from", "date", "to", "cc", "subject") a line starts with, if any."""
    colon = line.find(":", 0, 40)
    if colon <= 0:
        return None
    key = " ".join(line[:colon].strip(" \t*_").split()).casefold()
    return _HEADER_CATEGORY.get(key)


def _is_header_block(lines: list[str], start: int) -> bool:
    """Whether a pasted header block (From/Sent/To/Subject ...) starts at ``start``.

    Three different header names, one of them the sender, within a few
    lines with no blank line between them: a form or a table in the reply
    rarely looks like that.
    """
    if header_key(lines[start]) not in ("from", "date"):
        return False
    categories: set[str] = set()
    for line in lines[start : start + 10]:
        if _is_blank(line):
            break
        category = header_key(line)
        if category is not None:
            categories.add(category)
    return "from" in categories and len(categories) >= 3


def _is_original_marker(line: str) -> bool:
    """Whether a line opens a pasted message: "-----Original Message-----", "Begin forwarded
    message:", "---------- Forwarded message ---------" and their translations."""
    if len(line) > 120:
        return False
    core = line.strip().strip("-_=*~<>[]() \t").rstrip(":").strip().casefold()
    return core in _ORIGINAL_MARKERS


def _attribution_length(lines: list[str], start: int, quote_follows: bool) -> int:
    """How many lines (1-3) an attribution ("On ... wrote:") starting at ``start`` spans; 0 if none.

    A wrapped attribution is only taken when its first line starts like one
    (a preposition or a date), so the end of a paragraph is not swallowed.
    """
    span = lines[start : start + ATTRIBUTION_MAX_LINES]
    if not any(line.rstrip().endswith(":") for line in span):
        return 0  # every attribution ends in a colon: most lines are ruled out here
    joined = ""
    for length, line in enumerate(span, start=1):
        if not _may_attribute(line):
            return 0
        joined = " ".join(f"{joined} {line}".split())
        if len(joined) > ATTRIBUTION_MAX_CHARS:
            return 0
        candidate = joined.lstrip("-*_ ").casefold()
        if length > 1 and not _wraps_attribution(candidate, span[0]):
            return 0
        if _is_attribution(candidate, quote_follows):
            return length
    return 0


def _may_attribute(line: str) -> bool:
    """Whether ``line`` may be (part of) an attribution: text, neither quoted nor huge."""
    return len(line) <= ATTRIBUTION_MAX_LINE_CHARS and not _is_blank(line) and not _is_quoted(line)


def _wraps_attribution(candidate: str, first: str) -> bool:
    """Whether lines joined into ``candidate`` may be one wrapped attribution.

    Only when they start like one, and the first line does not end a
    sentence: the end of a paragraph is not the start of an attribution.
    """
    return _starts_like_attribution(candidate) and not first.rstrip().endswith((".", "!", "?"))


def _starts_like_attribution(candidate: str) -> bool:
    return candidate.startswith(_ATTRIBUTION_STARTS) or candidate[:1].isdigit()


def _is_attribution(candidate: str, quote_follows: bool) -> bool:
    # the cheap test first: it runs for every line of every message
    if not candidate.endswith(_WROTE_ENDINGS) and not candidate.endswith(":"):
        return False
    evidence = quote_follows or "@" in candidate or any(ch.isdigit() for ch in candidate)
    if not evidence:
        return False
    if candidate.endswith(_WROTE_ENDINGS):
        return True
    if candidate.endswith(":") and any(verb in candidate for verb in _WROTE_MIDDLES):
        return candidate.startswith(_ATTRIBUTION_STARTS) or "@" in candidate
    if candidate.endswith((">:", "> :")) and "@" in candidate:
        return any(ch.isdigit() for ch in candidate)
    return False


def _next_content(lines: list[str], start: int) -> int:
    index = start
    while index < len(lines) and _is_blank(lines[index]):
        index += 1
    return index


def strip_quotes(text: str) -> str:
    """``text`` without quoted history; the signature stays (see ``split_signature``).

    Lines are kept verbatim. Where quoted lines were removed between two
    pieces of the reply, the pieces are joined by one blank line.
    """
    lines = normalize_newlines(text[:MAX_TEXT_CHARS]).split("\n")
    keep = [True] * len(lines)
    end = len(lines)
    index = 0
    while index < end:
        line = lines[index]
        if _is_quoted(line):
            keep[index] = False
            index += 1
            continue
        if _is_blank(line):
            index += 1
            continue
        if _is_original_marker(line) or _is_header_block(lines, index):
            end = index
            break
        after = _next_content(lines, index + 1)
        quote_follows = after < len(lines) and _is_quoted(lines[after])
        length = _attribution_length(lines, index, quote_follows=False)
        if length == 0 and quote_follows:
            length = _attribution_length(lines, index, quote_follows=True)
        if length:
            following = _next_content(lines, index + length)
            if following < len(lines) and _is_quoted(lines[following]):
                for dropped in range(index, index + length):
                    keep[dropped] = False
                index += length
                continue
            end = index
            break
        index += 1
    return _join_kept(lines[:end], keep[:end])


def _join_kept(lines: list[str], keep: list[bool]) -> str:
    segments: list[list[str]] = [[]]
    for line, kept in zip(lines, keep, strict=True):
        if kept:
            segments[-1].append(line)
        elif segments[-1]:
            segments.append([])
    pieces = []
    for segment in segments:
        start, end = 0, len(segment)
        while start < end and _is_blank(segment[start]):
            start += 1
        while end > start and (_is_blank(segment[end - 1]) or _is_separator(segment[end - 1])):
            end -= 1
        if start < end:
            pieces.append("\n".join(segment[start:end]))
    return "\n\n".join(pieces)


def _is_separator(line: str) -> bool:
    """A line drawn with dashes, underscores or equals signs (the ``-- `` delimiter too)."""
    core = line.strip()
    return len(core) >= 2 and not core.strip("-_=") and len(set(core)) <= 2


# --- signatures -------------------------------------------------------------


def _is_mobile_signature(line: str) -> bool:
    core = " ".join(line.split()).strip("*_ ").rstrip(".!").casefold()
    if not core or len(core) > MAX_MOBILE_SIGNATURE_CHARS or not core.startswith(_SENT_VERBS):
        return False
    if "," in core and "(" not in core:
        return False
    return _MOBILE_SIGNATURES.fullmatch(core) is not None


def _has_contact(line: str) -> bool:
    """An e-mail address, a web address or a phone number on a short line."""
    if len(line) > MAX_CONTACT_LINE_CHARS:
        return False
    lowered = line.casefold()
    if "http://" in lowered or "https://" in lowered or "www." in lowered:
        return True
    at = lowered.find("@")
    if 0 < at < len(lowered) - 3 and "." in lowered[at:]:
        return True
    return any(_is_phone(match.group(0)) for match in _PHONE.finditer(line))


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    return MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS and _NOT_PHONE.search(candidate) is None


def _is_dash_signoff(line: str, previous: str | None) -> bool:
    """Whether the last line signs off with a dash ("-Abhishek Kona", "-- Tim").

    The line above must not be a list item, or the last item would be taken.
    """
    core = line.strip()
    if not core.startswith("-") or len(core) > MAX_SIGNOFF_CHARS or line[:1].isspace():
        return False
    name = core.lstrip("-")
    if len(core) - len(name) > MAX_SIGNOFF_DASHES:
        return False
    words = name.strip().split()
    if not 1 <= len(words) <= MAX_SIGNOFF_WORDS or not all(word[:1].isupper() for word in words):
        return False
    return previous is None or not previous.lstrip().startswith(("-", "*", "•"))


def _sender_names(sender: str) -> tuple[list[str], str]:
    name, address = parseaddr(sender) if "@" in sender else (sender, "")
    words = [word.strip(".,\"'()") for word in name.replace(",", " ").split()]
    return [word for word in words if len(word) >= 2], address.casefold()


def _names_sender(line: str, names: list[str], address: str) -> bool:
    """Whether a short line is essentially the sender's name or address."""
    lowered = line.casefold()
    if address and (address in lowered or address.split("@")[0] in lowered.split()):
        return True
    if not names:
        return False
    words = [word.strip(".,;:!-#|()\"'").casefold() for word in line.split()]
    words = [word for word in words if word]
    wanted = {name.casefold() for name in names}
    hits = [word for word in words if word in wanted]
    return bool(hits) and len(words) - len(hits) <= 2


@dataclass(frozen=True)
class _Body:
    """The text a signature is looked for in: its lines, the non-blank ones, the sender."""

    lines: list[str]
    content: tuple[int, ...]
    """Indexes of the non-blank lines; at least two, so some text stays above a signature."""
    sender: str


def _delimiter(body: _Body) -> int | None:
    """The "-- " delimiter; a bare "--" (its space stripped in transit) only near the end."""
    for position, index in enumerate(body.content[1:], start=1):
        line = body.lines[index]
        below = len(body.content) - position - 1
        if line.rstrip() == "--" and (
            line.startswith("-- ") or below <= MAX_LINES_BELOW_BARE_DELIMITER
        ):
            return index
    return None


def _mobile_signature(body: _Body) -> int | None:
    """A "Sent from my iPhone" line or the like, among the last lines."""
    for index in body.content[-MOBILE_SIGNATURE_LINES:]:
        if index > body.content[0] and _is_mobile_signature(body.lines[index]):
            return index
    return None


def _separated_block(body: _Body) -> int | None:
    """The lowest separator line, with a short block of contact details or a list footer below.

    Only the lowest separator is considered: one higher up has the message
    below it.
    """
    content = body.content
    rule = next(
        (p for p in range(len(content) - 1, 0, -1) if _is_rule(body.lines[content[p]])), None
    )
    if rule is not None and _is_signature_block([body.lines[i] for i in content[rule + 1 :]]):
        return content[rule]
    return None


def _is_signature_block(block: list[str]) -> bool:
    """A few short lines with contact details, or a mailing list's unsubscribe footer."""
    if not 1 <= len(block) <= MAX_SEPARATED_BLOCK_LINES:
        return False
    if any(len(line) > MAX_CONTACT_LINE_CHARS for line in block):
        return False
    return any(_has_contact(line) for line in block) or "unsubscribe" in " ".join(block).casefold()


def _is_rule(line: str) -> bool:
    return _is_separator(line) and len(line.strip()) >= MIN_RULE_CHARS


def _dash_signoff(body: _Body) -> int | None:
    """A last line signing off with a dash: "-Tim"."""
    last = body.content[-1]
    return last if _is_dash_signoff(body.lines[last], body.lines[body.content[-2]]) else None


def _paragraph_signature(body: _Body) -> int | None:
    """A trailing paragraph of short lines holding contact details or the sender's name.

    Signature lines are short (a name, a title, a number); a paragraph of
    prose that mentions an address and a URL is not one.
    """
    last = body.content[-1]
    start = last
    while start > 0 and not _is_blank(body.lines[start - 1]):
        start -= 1
    if start <= body.content[0]:
        return None
    paragraph = [line.strip() for line in body.lines[start : last + 1]]
    if not _short_lines(paragraph):
        return None
    if sum(_has_contact(line) for line in paragraph) >= MIN_PARAGRAPH_CONTACTS:
        return start
    return start if _names_the_sender(paragraph, body.sender) else None


def _short_lines(paragraph: list[str]) -> bool:
    """Whether ``paragraph`` is shaped like a signature: few lines, none long, short on average."""
    lengths = [len(line) for line in paragraph]
    return (
        len(paragraph) <= MAX_PARAGRAPH_SIGNATURE_LINES
        and max(lengths) <= MAX_PARAGRAPH_SIGNATURE_LINE_CHARS
        and sum(lengths) <= MAX_PARAGRAPH_SIGNATURE_MEAN_CHARS * len(paragraph)
    )


def _names_the_sender(paragraph: list[str], sender: str) -> bool:
    if not sender:
        return False
    names, address = _sender_names(sender)
    return any(_names_sender(line, names, address) for line in paragraph)


_SignatureRule = Callable[[_Body], int | None]

_SIGNATURE_RULES: tuple[_SignatureRule, ...] = (
    _delimiter,
    _mobile_signature,
    _separated_block,
    _dash_signoff,
    _paragraph_signature,
)
"""The signature rules in order, the most explicit mark first; the first that finds a
start wins, so a delimiter above a "Sent from" line takes both."""


def _signature_start(lines: list[str], sender: str) -> int | None:
    """Where a signature starts in ``lines`` (the body above it must keep some text)."""
    content = tuple(index for index, line in enumerate(lines) if not _is_blank(line))
    if len(content) < 2:
        return None
    body = _Body(lines, content, sender)
    for rule in _SIGNATURE_RULES:
        start = rule(body)
        if start is not None:
            return start
    return None


def split_signature(text: str, sender: str = "") -> tuple[str, str]:
    """Split ``text`` into (body, signature); the signature is "" when none is found.

    ``sender`` ("Name <address>", a name or an address) lets a trailing
    paragraph that names the sender count as a signature. Signatures stack
    (a sign-off above a mailing-list footer), so the rules repeat on the
    body until none applies.
    """
    lines = normalize_newlines(text[:MAX_TEXT_CHARS]).split("\n")
    cut = len(lines)
    for _ in range(MAX_STACKED_SIGNATURES):
        start = _signature_start(lines[:cut], sender)
        if start is None:
            break
        cut = start
    end = cut
    if cut < len(lines):
        while end > 0 and (_is_blank(lines[end - 1]) or _is_separator(lines[end - 1])):
            end -= 1
    body = "\n".join(lines[:end]).rstrip()
    signature = "\n".join(lines[end:]).strip("\n")
    return body, signature


def reply_text(text: str, *, sender: str = "") -> str:
    """The new text of a reply: quoted history and signature removed, trailing spaces stripped.

    ``sender`` is optional; see ``split_signature``.
    """
    try:
        body, _ = split_signature(strip_quotes(text), sender)
        lines = [line.rstrip() for line in body.split("\n")]
        return "\n".join(lines).strip("\n")
    except Exception:
        return ""
