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
   paragraph that holds contact details (or, given the sender, names them).
"""

from __future__ import annotations

import re
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
    for line in lines[start : start + 3]:
        if line.rstrip().endswith(":"):
            break
    else:
        return 0  # every attribution ends in a colon: most lines are ruled out here
    first = lines[start]
    if len(first) > 1000 or _is_blank(first) or _is_quoted(first):
        return 0
    joined = ""
    for length in range(1, 4):
        index = start + length - 1
        if index >= len(lines):
            return 0
        line = lines[index]
        if length > 1 and (_is_blank(line) or _is_quoted(line) or len(line) > 1000):
            return 0
        joined = " ".join((joined + " " + line).split()) if joined else " ".join(line.split())
        if len(joined) > 400:
            return 0
        candidate = joined.lstrip("-*_ ").casefold()
        if length > 1 and not _starts_like_attribution(candidate):
            return 0
        if length == 2 and first.rstrip().endswith((".", "!", "?")):
            return 0
        if _is_attribution(candidate, quote_follows):
            return length
    return 0


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
    if not core or len(core) > 80 or not core.startswith(_SENT_VERBS):
        return False
    if "," in core and "(" not in core:
        return False
    return _MOBILE_SIGNATURES.fullmatch(core) is not None


def _has_contact(line: str) -> bool:
    """An e-mail address, a web address or a phone number on a short line."""
    if len(line) > 100:
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
    return 7 <= digits <= 15 and _NOT_PHONE.search(candidate) is None


def _is_dash_signoff(line: str, previous: str | None) -> bool:
    """Whether the last line signs off with a dash ("-Abhishek Kona", "-- Tim").

    The line above must not be a list item, or the last item would be taken.
    """
    core = line.strip()
    if not core.startswith("-") or len(core) > 40 or line[:1].isspace():
        return False
    name = core.lstrip("-")
    if len(core) - len(name) > 2:
        return False
    words = name.strip().split()
    if not 1 <= len(words) <= 4 or not all(word[:1].isupper() for word in words):
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


def _signature_start(lines: list[str], sender: str) -> int | None:
    """Where a signature starts in ``lines`` (the body above it must keep some text)."""
    content = [index for index, line in enumerate(lines) if not _is_blank(line)]
    if len(content) < 2:
        return None
    first = content[0]
    for position, index in enumerate(content[1:], start=1):
        if lines[index].rstrip() == "--":
            below = len(content) - position - 1
            if lines[index].startswith("-- ") or below <= 15:
                return index
    for index in content[-3:]:
        if index > first and _is_mobile_signature(lines[index]):
            return index
    for position in range(len(content) - 1, 0, -1):
        index = content[position]
        if _is_separator(lines[index]) and len(lines[index].strip()) >= 4:
            tail = [lines[i] for i in content[position + 1 :]]
            if 1 <= len(tail) <= 12 and all(len(line) <= 100 for line in tail):
                words = " ".join(tail).casefold()
                if any(_has_contact(line) for line in tail) or "unsubscribe" in words:
                    return index
            break
    last = content[-1]
    previous = lines[content[-2]]
    if _is_dash_signoff(lines[last], previous):
        return last
    return _paragraph_signature(lines, content, sender)


def _paragraph_signature(lines: list[str], content: list[int], sender: str) -> int | None:
    """A trailing paragraph of short lines holding contact details or the sender's name.

    Signature lines are short (a name, a title, a number); a paragraph of
    prose that mentions an address and a URL is not one.
    """
    last = content[-1]
    start = last
    while start > 0 and not _is_blank(lines[start - 1]):
        start -= 1
    if start <= content[0]:
        return None
    paragraph = [line.strip() for line in lines[start : last + 1]]
    lengths = [len(line) for line in paragraph]
    if len(paragraph) > 8 or max(lengths) > 80 or sum(lengths) > 45 * len(paragraph):
        return None
    if sum(_has_contact(line) for line in paragraph) >= 2:
        return start
    if sender:
        names, address = _sender_names(sender)
        if any(_names_sender(line, names, address) for line in paragraph):
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
    for _ in range(5):
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
