"""Replies: the new text of a plain-text message, without quoted history or signature.

Mail is hostile input, so the rules work on lines, in one pass, without
backtracking regexes, and text is clipped to ``config.limits.MAX_TEXT_CHARS``: the cost of a
message does not grow with its malice. What clients write is data, per language, in
``agent.mail.reply_patterns``; the rules here only say where to look for it.

1. Quoted history is removed (``strip_quotes``). ``>`` lines go wherever they
   are, so inline answers between quotes survive, and so does the tail of a
   long quoted line a client re-wrapped without its ``>``. An attribution line
   ("On ... wrote:", "Am ... schrieb ...:", "pe 20. lokakuuta ... kirjoitti:",
   Zoho's "---- On ... wrote ----", possibly wrapped over three lines) goes
   with the quote that follows it; with no ``>`` quote after it, the history
   was pasted unmarked and everything from it on goes. Separator lines
   ("-----Original Message-----", "-------- Oprindelig besked --------") and
   blocks of From/Sent/To/Subject header lines in any listed language also cut
   everything below them; the words of a separator without its dashes count
   only with a header line below, so a reply that says "Original message"
   stays.
2. The signature is removed from what is left (``split_signature``): the
   ``-- `` delimiter, the line a client appends ("Sent from my iPhone", "Von
   meinem iPhone gesendet", "Envoyé à partir de Outlook pour iOS"), a
   separator line followed by a short block of contact details, a "-Name"
   sign-off, and a trailing paragraph that holds contact details (or, given
   the sender, names them): the rules of ``_SIGNATURE_RULES``, in that order,
   under the limits named below the vocabularies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr

from agent.mail.reply_patterns import (
    ATTRIBUTION_STARTS,
    DATE_LINE_OPENERS,
    HEADER_CATEGORY,
    MOBILE_SIGNATURE_PATTERNS,
    ORIGINAL_MARKERS,
    WROTE_ENDINGS,
    WROTE_MIDDLES,
)
from config.limits import MAX_TEXT_CHARS

__all__ = [
    "header_key",
    "normalize_newlines",
    "reply_text",
    "split_signature",
    "strip_quotes",
]


# --- vocabularies -----------------------------------------------------------

# The wording of clients, per language, lives in ``agent.mail.reply_patterns``.
_WROTE_ENDINGS = WROTE_ENDINGS
# "wrote" with its colon dropped: Zoho's "---- On ... wrote ----", clients that omit it.
_COLONLESS_ENDINGS = tuple(ending.rstrip(":").rstrip() for ending in WROTE_ENDINGS)
_COLONLESS_LAST = frozenset(ending[-1] for ending in _COLONLESS_ENDINGS)
_WROTE_MIDDLES = WROTE_MIDDLES
_ATTRIBUTION_STARTS = ATTRIBUTION_STARTS
_ORIGINAL_MARKERS = ORIGINAL_MARKERS
_HEADER_CATEGORY = HEADER_CATEGORY
_MOBILE_SIGNATURES = re.compile("|".join(f"(?:{p})" for p in MOBILE_SIGNATURE_PATTERNS))
# A weekday or a date opens the attribution: "pe 20. lokakuuta", "tor. 5. jan.", "ср, 30 апр.".
_DATE_FIRST = re.compile(r"(?:[^\W\d_]{1,4}\.?,?|[^\W\d_]{5,12},) \d")
# A link glued to a client's line: "Gesendet von Outlook für Android<https://aka.ms/x>".
_GLUED_LINK = re.compile(r"\s*[<(]https?://[^\s>)]{0,300}[>)]")
_MARKER_DECORATION = "-_=~*"
_DATE_OPENER_FIRST = frozenset(opener[0] for opener in DATE_LINE_OPENERS)
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
MAX_MARKER_CHARS = 120
"""A separator line ("-----Original Message-----") is short; a longer one is prose."""
MIN_MARKER_DECORATION = 2
"""Dashes or underscores on one side that make "Original Message" a drawn separator."""
REWRAPPED_QUOTE_MIN_CHARS = 60
"""A quoted line at least this long was likely broken by a client's re-wrap at 72-78
columns, so an unmarked line squeezed below it is its tail, not an inline answer."""

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
    """The header category ("from", "date", "to", "cc", "subject") a line starts with, if any.

    Names are looked up in every language at once (``reply_patterns``), the
    colon ASCII or full-width; a French "Message du 05/01/23 10:00" is a date
    header without one.
    """
    head = line[:40]
    for colon_char in (":", "："):
        colon = head.find(colon_char)
        if colon > 0:
            key = " ".join(head[:colon].strip(" \t*_").split()).casefold()
            category = _HEADER_CATEGORY.get(key)
            if category is not None:
                return category
    if head.lstrip(" \t*_>")[:1].casefold() in _DATE_OPENER_FIRST:
        opened = " ".join(head.strip(" \t*_>").split()).casefold()
        for opener in DATE_LINE_OPENERS:
            if opened.startswith(opener) and opened[len(opener) : len(opener) + 1].isdigit():
                return "date"
    return None


def _is_header_block(lines: list[str], start: int, keys: dict[int, str | None]) -> bool:
    """Whether a pasted header block (From/Sent/To/Subject ...) starts at ``start``.

    Three different header names, one of them the sender, within a few
    lines with no blank line between them: a form or a table in the reply
    rarely looks like that. ``keys`` caches ``header_key`` by line, so a
    message of header-like lines costs one look per line, not ten.
    """
    if _cached_key(lines, start, keys) not in ("from", "date"):
        return False
    categories: set[str] = set()
    for index in range(start, min(start + 10, len(lines))):
        if _is_blank(lines[index]):
            break
        category = _cached_key(lines, index, keys)
        if category is not None:
            categories.add(category)
    return "from" in categories and len(categories) >= 3


def _cached_key(lines: list[str], index: int, keys: dict[int, str | None]) -> str | None:
    if index not in keys:
        keys[index] = header_key(lines[index])
    return keys[index]


def _is_original_marker(lines: list[str], index: int) -> bool:
    """Whether a line opens a pasted message: "-----Original Message-----", "Begin forwarded
    message:", "---------- Forwarded message ---------" and their translations.

    The words alone are not enough: "Original message" typed in a reply is
    text. The line must be drawn as a separator (dashes, underscores around
    the words), or a header line (From:, Von:, De : ...) must follow it.
    """
    line = lines[index]
    if len(line) > MAX_MARKER_CHARS:
        return False
    stripped = line.strip()
    core = stripped.strip(f"{_MARKER_DECORATION}<>[]() \t").rstrip(":：").strip()
    if " ".join(core.split()).casefold() not in _ORIGINAL_MARKERS:
        return False
    if len(stripped) - len(stripped.lstrip(_MARKER_DECORATION)) >= MIN_MARKER_DECORATION:
        return True
    if len(stripped) - len(stripped.rstrip(_MARKER_DECORATION)) >= MIN_MARKER_DECORATION:
        return True
    following = _next_content(lines, index + 1)
    return following < len(lines) and header_key(lines[following]) is not None


def _ends_like_attribution(line: str) -> bool:
    """The cheap test run on every line: an attribution ends in a colon, a "wrote" verb,
    or the dashes Zoho draws around it. The last character rules out most prose."""
    tail = line[-60:].rstrip()
    last = tail[-1:]
    if last in (":", "："):
        return True
    if last in ("-", "_"):
        return tail.endswith(("--", "__"))  # "---- Am ... schrieb max@example.de ----"
    return last.casefold() in _COLONLESS_LAST and tail.casefold().endswith(_COLONLESS_ENDINGS)


def _attribution_length(lines: list[str], start: int, quote_follows: bool) -> int:
    """How many lines (1-3) an attribution ("On ... wrote:") starting at ``start`` spans; 0 if none.

    A wrapped attribution is only taken when its first line starts like one
    (a preposition, a weekday or a date), so the end of a paragraph is not
    swallowed.
    """
    span = lines[start : start + ATTRIBUTION_MAX_LINES]
    if not any(_ends_like_attribution(line) for line in span):
        return 0  # most lines are ruled out here
    joined = ""
    for length, line in enumerate(span, start=1):
        if not _may_attribute(line):
            return 0
        joined = " ".join(f"{joined} {line}".split())
        if len(joined) > ATTRIBUTION_MAX_CHARS:
            return 0
        candidate = _attribution_core(joined)
        if length > 1 and not _wraps_attribution(candidate, span[0]):
            return 0
        decorated = joined.startswith(("--", "__")) or joined.endswith(("--", "__"))
        if _is_attribution(candidate, quote_follows, decorated):
            return length
    return 0


def _attribution_core(joined: str) -> str:
    """An attribution's words, case-folded, decoration off, colons written one way."""
    core = joined.strip(f" {_MARKER_DECORATION}").casefold()
    return core.replace("：", ":").replace(" :", ":")


def _may_attribute(line: str) -> bool:
    """Whether ``line`` may be (part of) an attribution: text, neither quoted nor huge."""
    return len(line) <= ATTRIBUTION_MAX_LINE_CHARS and not _is_blank(line) and not _is_quoted(line)


def _wraps_attribution(candidate: str, first: str) -> bool:
    """Whether lines joined into ``candidate`` may be one wrapped attribution.

    Only when they start like one, and the first line does not end a
    sentence: the end of a paragraph is not the start of an attribution.
    """
    if first.rstrip().endswith((".", "!", "?")):
        return False
    opening = _attribution_core(first)
    return _starts_like_attribution(candidate) and _starts_like_attribution(opening)


def _starts_like_attribution(candidate: str) -> bool:
    """A preposition ("On", "Am", "W dniu"), a date, or a weekday before a date ("pe 20.")."""
    return (
        candidate.startswith(_ATTRIBUTION_STARTS)
        or candidate[:1].isdigit()
        or _DATE_FIRST.match(candidate) is not None
    )


def _is_attribution(candidate: str, quote_follows: bool, decorated: bool = False) -> bool:
    """Whether ``candidate`` (see ``_attribution_core``) is an attribution line.

    It needs evidence besides its wording: an address, a digit of the date,
    or a quote below. Without the colon ("On ... wrote", Zoho's "---- On ...
    wrote ----") it must also start like one and carry an address or a
    separator's dashes, since a sentence may end in "wrote".
    """
    evidence = quote_follows or "@" in candidate or any(ch.isdigit() for ch in candidate)
    if not evidence:
        return False
    if not candidate.endswith(":"):
        return _is_colonless_attribution(candidate, quote_follows, decorated)
    if candidate.endswith(_WROTE_ENDINGS):
        return True
    if any(verb in candidate for verb in _WROTE_MIDDLES):
        return candidate.startswith(_ATTRIBUTION_STARTS) or "@" in candidate
    if candidate.endswith(">:") and "@" in candidate:
        return any(ch.isdigit() for ch in candidate)
    return False


def _is_colonless_attribution(candidate: str, quote_follows: bool, decorated: bool) -> bool:
    if not (decorated or quote_follows or "@" in candidate):
        return False
    if not _starts_like_attribution(candidate):
        return False
    if candidate.endswith(_COLONLESS_ENDINGS):
        return True
    return decorated and any(verb in candidate for verb in _WROTE_MIDDLES)


def _next_content(lines: list[str], start: int) -> int:
    index = start
    while index < len(lines) and _is_blank(lines[index]):
        index += 1
    return index


def _is_rewrapped_quote(lines: list[str], index: int) -> bool:
    """Whether an unmarked line is the tail of a quoted line a client re-wrapped.

    A long quoted line broken mid-sentence, this line right below it without
    a blank line, and a quoted line again right after: the ``>`` was lost
    when the line was broken. An answer written inline between quotes sits
    below a blank line, a short line, or a finished sentence and starts with
    a capital; a tail that starts in lower case continues the quote.
    """
    if index == 0 or index + 1 >= len(lines):
        return False
    above, below = lines[index - 1], lines[index + 1]
    return (
        _is_quoted(above)
        and _is_quoted(below)
        and len(above.rstrip()) >= REWRAPPED_QUOTE_MIN_CHARS
        and len(lines[index]) < len(above)
        and (
            not above.rstrip().endswith((".", "?", "!", ":")) or lines[index].lstrip()[:1].islower()
        )
    )


def strip_quotes(text: str) -> str:
    """``text`` without quoted history; the signature stays (see ``split_signature``).

    Lines are kept verbatim. Where quoted lines were removed between two
    pieces of the reply, the pieces are joined by one blank line.
    """
    lines = normalize_newlines(text[:MAX_TEXT_CHARS]).split("\n")
    keep = [True] * len(lines)
    keys: dict[int, str | None] = {}
    end = len(lines)
    index = 0
    while index < end:
        line = lines[index]
        if _is_quoted(line) or (not _is_blank(line) and _is_rewrapped_quote(lines, index)):
            keep[index] = False
            index += 1
            continue
        if _is_blank(line):
            index += 1
            continue
        if _is_original_marker(lines, index) or _is_header_block(lines, index, keys):
            end = index
            break
        length = _attribution_at(lines, index)
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


def _attribution_at(lines: list[str], index: int) -> int:
    """The length of an attribution at ``index``; a quote below is evidence when needed."""
    length = _attribution_length(lines, index, quote_follows=False)
    if length:
        return length
    after = _next_content(lines, index + 1)
    if after < len(lines) and _is_quoted(lines[after]):
        return _attribution_length(lines, index, quote_follows=True)
    return 0


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
    """Whether a line is what a client appends ("Sent from my iPhone", "Von meinem iPhone
    gesendet", "Télécharger Outlook pour iOS<https://aka.ms/...>"), in any language."""
    core = _GLUED_LINK.sub("", line[: MAX_MOBILE_SIGNATURE_CHARS * 4])
    core = " ".join(core.split()).strip("*_ ").rstrip(".!").casefold()
    if not core or len(core) > MAX_MOBILE_SIGNATURE_CHARS:
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
