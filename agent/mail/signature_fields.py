"""Signature fields: a sender's title, phone numbers, company and website, read from the
signature block of a message they wrote.

Mail is hostile input, so the rules read lines, one at a time, with no
backtracking regex: the text is clipped to ``config.limits.MAX_TEXT_CHARS``,
at most ``SIGNATURE_MAX_LINES`` lines of a signature are read and a line
longer than ``MAX_LINE_CHARS`` is skipped. Pure: no I/O, nothing logged.

1. The block. Quoted history goes first (``replies.strip_quotes``). The
   block starts at the highest of: the signature ``replies.split_signature``
   finds, the last closing ("Kind regards", "Mit freundlichen Grüßen",
   "Cordialement", "Saludos") and the last line naming the sender, each
   looked for among the last ``SIGNATURE_MAX_LINES`` non-blank lines.
2. Phones. A number after a label in any listed language ("Tel.:", "Mobil",
   "Tél.", "Móvil", "M:", "📱") is taken as written, whitespace collapsed;
   one after a fax label is not. A number without a label counts only when
   it fills its segment of the line (segments are cut at "|", "•", "·" and
   tabs). Dates, short numbers (postcodes, amounts), numbers after other
   words ("Order no. 12345678", "Registered No. 214436") and bare digit runs
   that start neither with "+" nor "0" (order and reference numbers) are not
   phones.
3. Title. The part after the sender's name on its line ("Joe Smith |
   Director"), else the line right under the sender's name when it looks
   like a title (job-title words, or a few capitalised words), else the first
   line made of job-title words. "CEO at Acme" gives the title and the
   company.
4. Company. The company named in the title line ("at Acme"), else a short
   line ending in a legal form (GmbH, Ltd, Inc, S.L., SARL...), else the line
   right under the title.
5. Website. The host of the first www. or http(s) address in the block,
   without "www."; links of images and of client lines ("Sent from ...") do
   not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from agent.mail.replies import normalize_newlines, split_signature, strip_quotes
from config.limits import MAX_TEXT_CHARS

__all__ = ["SignatureFields", "read_signature"]


# --- limits -----------------------------------------------------------------

SIGNATURE_MAX_LINES = 25
"""Non-blank lines read from the end of the new text, and from the start of the block:
a signature with its disclaimer fits, a whole message does not."""
MAX_LINE_CHARS = 100
"""A longer line is prose or a disclaimer, never a name, a title or a number."""
MAX_TITLE_CHARS = 80
"""A title is a few words; the ``contacts.title`` column holds more, but no title needs it."""
MAX_TITLE_WORDS = 8
MAX_PLAIN_TITLE_WORDS = 5
"""Capitalised words under the name that make a title without a job-title word."""
MAX_COMPANY_WORDS = 8
MAX_NAME_EXTRA_WORDS = 2
"""Words beside the sender's name on its line: "Dr.", "Ph.D.", a middle initial."""
MIN_PHONE_DIGITS = 7
MAX_PHONE_DIGITS = 15
"""ITU-T E.164: no international number has more digits."""
MAX_PHONE_CHARS = 40
MAX_URL_CHARS = 300


# --- vocabularies -----------------------------------------------------------


def _words(table: str) -> frozenset[str]:
    return frozenset(word.strip() for word in table.split("|") if word.strip())


PHONE_LABELS = _words(
    "tel | tel. | tél | tél. | tel.: | telephone | téléphone | telefon | telefono | teléfono"
    "| telefone | tlf | tfn | phone | ph | p | t | m | o | d | c | w | mob | mobile | mobil"
    "| cell | cel | celular | cellulare | fon | handy | portable | móvil | movil | gsm"
    "| direct | office | work | durchwahl | zentrale | whatsapp | 📱 | 📞 | ☎ | ☎️ | 📲 | ✆"
)
"""Words that announce a phone number, case-folded, without their colon or dot."""
FAX_LABELS = _words("fax | f | telefax | télécopie | telecopie | facsimile | faks")

TITLE_WORDS = _words(
    # en
    "director | manager | head | vp | president | ceo | cto | cfo | coo | cmo | cio | ciso"
    "| founder | co-founder | cofounder | owner | partner | engineer | developer | consultant"
    "| specialist | analyst | administrator | officer | executive | lead | architect | designer"
    "| coordinator | assistant | associate | representative | advisor | adviser | recruiter"
    "| chairman | chair | secretary | treasurer | principal | attorney | counsel | accountant"
    "| supervisor | scientist | researcher | professor | editor | producer | technician"
    "| programmer | strategist | buyer | controller | auditor | practitioner | chief | evp"
    "| svp | avp | intern | sales | marketing | account"
    # de
    "| geschäftsführer | geschäftsführerin | geschäftsführung | leiter | leiterin"
    "| abteilungsleiter | vertriebsleiter | projektleiter | projektleiterin | teamleiter"
    "| bereichsleiter | inhaber | inhaberin | vorstand | prokurist | referent | referentin"
    "| sachbearbeiter | sachbearbeiterin | berater | beraterin | entwickler | entwicklerin"
    "| ingenieur | ingenieurin | assistenz | kundenbetreuer | kundenbetreuerin | vertrieb"
    "| einkauf | einkäufer | projektmanager | vorsitzender"
    # fr
    "| directeur | directrice | responsable | chef | gérant | gérante | président | présidente"
    "| ingénieur | ingénieure | chargé | chargée | commercial | commerciale | conseiller"
    "| conseillère | fondateur | fondatrice | développeur | développeuse | consultante"
    "| comptable | gestionnaire | associé | associée | pdg | dg | technicienne"
    # es, it, pt
    "| directora | gerente | jefe | jefa | ingeniero | ingeniera | asesor | asesora"
    "| consultor | consultora | presidenta | fundador | fundadora | socio | socia"
    "| coordinador | coordinadora | asistente | técnico | técnica | administrador"
    "| administradora | desarrollador | desarrolladora | ejecutivo | ejecutiva | analista"
    "| direttore | direttrice | responsabile | amministratore | ingegnere | titolare"
    "| consulente | diretor | diretora | gerente"
)
"""Words of job titles in en, de, fr, es, it, pt; a title line holds at least one
("Director comercial", "Head of Sales", "Geschäftsführer", "Responsable achats")."""

LEGAL_FORMS = _words(
    "gmbh | ltd | ltd. | limited | inc | inc. | llc | llp | plc | corp | corp. | corporation"
    "| co. | ag | kg | se | sa | s.a. | sl | s.l. | sas | s.a.s. | sarl | s.a.r.l. | ab | bv"
    "| b.v. | nv | n.v. | oy | as | a/s | aps | srl | s.r.l. | spa | s.p.a. | pty | e.v."
    "| ug | kft | sp. z o.o. | s.c. | lda | ltda | ltda."
)
"""Legal forms that end a company's name, case-folded."""

CLOSINGS = _words(
    "regards | kind regards | best regards | warm regards | warmest regards | best"
    "| all the best | best wishes | cheers | thanks | thank you | many thanks | sincerely"
    "| yours sincerely | sincerely yours | yours truly | yours faithfully | respectfully"
    "| mit freundlichen grüßen | mit freundlichen grüssen | freundliche grüße"
    "| freundliche grüsse | viele grüße | viele grüsse | beste grüße | beste grüsse"
    "| liebe grüße | herzliche grüße | gruß | grüße | mfg | lg | vg"
    "| cordialement | bien cordialement | bien à vous | salutations | meilleures salutations"
    "| sincères salutations | bonne journée | merci"
    "| saludos | saludos cordiales | un saludo | atentamente | cordialmente | gracias"
    "| cordiali saluti | distinti saluti | saluti | atenciosamente | abraços"
    "| met vriendelijke groet | groeten | med venlig hilsen | mvh | med vänliga hälsningar"
    "| hälsningar | pozdrawiam | s pozdravem | με εκτίμηση"
)
"""Closings above a signature, case-folded, punctuation and emoji stripped."""

_TITLE_CONNECTORS = _words(
    "of | and | & | for | the | de | du | des | la | le | del | der | die | und | y | e | et"
    "| für | / | - | – | di | da | do"
)
_NAME_SEPARATORS = ("|", " - ", " – ", " — ", " · ", " • ")
_COMPANY_JOINERS = (" at ", " @ ", " bei ", " chez ", " en ", " presso ", " na ")
_SEGMENT_BREAKS = str.maketrans({"|": "\n", "•": "\n", "·": "\n", "\t": "\n"})
_PHONE_CHARS = frozenset("+0123456789()-./")
_MARKUP = "*_`~>#"
_CLIENT_LINES = ("sent from", "sent with", "envoyé de", "gesendet von", "von meinem")


@dataclass(frozen=True)
class SignatureFields:
    """What a signature says about its sender; empty fields are None or ()."""

    title: str | None = None
    phones: tuple[str, ...] = ()
    company: str | None = None
    website: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.title or self.phones or self.company or self.website)


# --- the block --------------------------------------------------------------


def _clean(line: str) -> str:
    """A line without markup (``**bold**``, ``_x_``) and surrounding spaces."""
    return " ".join(line.strip().strip(_MARKUP).strip().strip(_MARKUP).split())


def _sender_names(sender: str) -> frozenset[str]:
    name, _address = parseaddr(sender) if "@" in sender else (sender, "")
    words = (word.strip(".,\"'()").casefold() for word in name.replace(",", " ").split())
    return frozenset(word for word in words if len(word) >= 2)


def _line_words(line: str) -> list[str]:
    words = (word.strip(".,;:!-#|()*_\"'").casefold() for word in line.split())
    return [word for word in words if word]


def _names_sender(line: str, names: frozenset[str]) -> bool:
    """Whether ``line`` is the sender's name, give or take a courtesy title or initial."""
    if not names or len(line) > MAX_LINE_CHARS:
        return False
    words = _line_words(line)
    hits = sum(word in names for word in words)
    return hits > 0 and len(words) - hits <= MAX_NAME_EXTRA_WORDS


def _is_closing(line: str) -> bool:
    if len(line) > MAX_LINE_CHARS:
        return False
    core = "".join(ch for ch in line.casefold() if ch.isalpha() or ch in " '")
    return " ".join(core.split()) in CLOSINGS


def _tail_start(lines: list[str]) -> int:
    """The index of the ``SIGNATURE_MAX_LINES``-th non-blank line from the end."""
    seen = 0
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].strip():
            seen += 1
            if seen == SIGNATURE_MAX_LINES:
                return index
    return 0


def _block(text: str, names: frozenset[str], sender: str) -> list[str]:
    """The signature block's lines, at most ``SIGNATURE_MAX_LINES`` non-blank ones."""
    lines = normalize_newlines(strip_quotes(text[:MAX_TEXT_CHARS])).rstrip().split("\n")
    tail = _tail_start(lines)
    starts = [_signature_start(lines, sender)]
    for index in range(len(lines) - 1, tail - 1, -1):
        if _opens_block(lines[index], names):
            starts.append(index)
            break
    found = [start for start in starts if start is not None]
    if not found:
        return []
    block: list[str] = []
    for line in lines[max(min(found), tail) :]:
        if line.strip():
            block.append(line)
            if len(block) == SIGNATURE_MAX_LINES:
                break
    return block


def _opens_block(line: str, names: frozenset[str]) -> bool:
    """A closing, the sender's name, or the name with a title ("Jane Roe | CTO")."""
    if _is_closing(line) or _names_sender(line, names):
        return True
    return len(line) <= MAX_LINE_CHARS and _after_name(line, names) is not None


def _signature_start(lines: list[str], sender: str) -> int | None:
    """Where ``split_signature`` puts the signature, as an index into ``lines``."""
    _body, signature = split_signature("\n".join(lines), sender)
    if not signature:
        return None
    return max(len(lines) - len(signature.split("\n")), 0)


# --- phones -----------------------------------------------------------------


def _label(token: str) -> str | None:
    """The label a token such as "Tel.:", "M:", "Fax" or "📱" is: "phone", "fax" or None."""
    key = token.casefold().strip(":.-–")
    if key in PHONE_LABELS:
        return "phone"
    if key in FAX_LABELS:
        return "fax"
    return None


def _split_glued(token: str) -> list[str]:
    """A label glued to its number ("Tel:+49...") as two tokens ("Tel:", "+49...")."""
    colon = token.find(":")
    if 0 < colon < len(token) - 1 and _label(token[: colon + 1]) is not None:
        return [token[: colon + 1], token[colon + 1 :]]
    return [token]


def _is_number_token(token: str) -> bool:
    return bool(token) and all(ch in _PHONE_CHARS for ch in token)


def _is_date(candidate: str) -> bool:
    """A date ("2024-03-15", "15.03.2024", "03/06/24"): a day, a month, a year of 2 or 4 digits."""
    groups = candidate.replace(".", "/").replace("-", "/").split("/")
    if len(groups) != 3 or not all(group.isdigit() for group in groups):
        return False
    sizes = tuple(len(group) for group in groups)
    if sizes[0] == 4:
        return sizes[1] <= 2 and sizes[2] <= 2
    return sizes[0] <= 2 and sizes[1] <= 2 and sizes[2] in (2, 4)


def _valid_phone(candidate: str, labelled: bool) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if not MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS or len(candidate) > MAX_PHONE_CHARS:
        return False
    if "+" in candidate[1:] or _is_date(candidate.replace(" ", "")):
        return False
    if candidate.count("(") != candidate.count(")"):
        return False
    if not labelled and candidate.isdigit():
        return candidate.startswith("0")
    return True


def _segment_phones(segment: str) -> list[str]:
    """The numbers in one segment of a line: labelled ones, or one that fills it."""
    tokens = [part for token in segment.split() for part in _split_glued(token)]
    kinds = [_token_kind(token) for token in tokens]
    found: list[str] = []
    label: str | None = None
    index = 0
    while index < len(tokens):
        if kinds[index] != "number":
            label = _next_label(label, kinds[index])
            index += 1
            continue
        end = _run_end(tokens, index)
        number = " ".join(tokens[index:end]).strip("-./ ")
        alone = "word" not in kinds[:index] and end == len(tokens)
        if _accepted(number, label, alone):
            found.append(number)
        label = None
        index = end
    return found


def _next_label(label: str | None, kind: str) -> str | None:
    """A label holds across punctuation ("Tel - 0123"); another word ends it."""
    if kind in ("phone", "fax"):
        return kind
    return label if kind == "mark" else None


def _token_kind(token: str) -> str:
    """What a token is: a label ("phone", "fax"), a "number", a "word" or a "mark"
    (punctuation, emoji)."""
    label = _label(token)
    if label is not None:
        return label
    if _starts_number(token):
        return "number"
    return "word" if any(ch.isalnum() for ch in token) else "mark"


def _run_end(tokens: list[str], start: int) -> int:
    """The end of the run of number-like tokens ("+49", "(0)", "89", "1234-5") at ``start``."""
    end = start + 1
    while end < len(tokens) and _is_number_token(tokens[end]):
        end += 1
    return end


def _starts_number(token: str) -> bool:
    return _is_number_token(token) and any(ch.isdigit() for ch in token)


def _accepted(number: str, label: str | None, alone: bool) -> bool:
    """A labelled number, or an unlabelled one alone in its segment, that is a phone."""
    if label == "phone":
        return _valid_phone(number, labelled=True)
    return label is None and alone and _valid_phone(number, labelled=False)


def _phones(block: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for line in block:
        if len(line) > MAX_LINE_CHARS:
            continue
        for segment in line.translate(_SEGMENT_BREAKS).split("\n"):
            found.extend(_segment_phones(segment.strip(_MARKUP + " ")))
    return tuple(dict.fromkeys(found))


# --- title and company ------------------------------------------------------


def _has_title_word(text: str) -> bool:
    return any(word in TITLE_WORDS for word in _line_words(text.replace("/", " ")))


def _is_contact(line: str) -> bool:
    lowered = line.casefold()
    if "@" in lowered.replace(" @ ", " ") or "http" in lowered or "www." in lowered:
        return True
    return sum(ch.isdigit() for ch in line) >= 3


def _looks_like_title(line: str, under_name: bool) -> bool:
    """A job title: short, no contact detail, not a sentence; job-title words, or (right
    under the name) a few capitalised words."""
    if not _title_shaped(line):
        return False
    if _has_title_word(line):
        return True
    words = line.split()
    return under_name and len(words) <= MAX_PLAIN_TITLE_WORDS and _title_case(words)


def _title_shaped(line: str) -> bool:
    """Short, capitalised, without contact details, neither a closing nor a question."""
    words = line.split()
    if not words or len(line) > MAX_TITLE_CHARS or len(words) > MAX_TITLE_WORDS:
        return False
    if _is_contact(line) or _is_closing(line) or line.endswith(("?", ":")):
        return False
    return line[0].isupper() and not line.casefold().startswith(_CLIENT_LINES)


def _title_case(words: list[str]) -> bool:
    significant = [word for word in words if word.casefold() not in _TITLE_CONNECTORS]
    return bool(significant) and all(word[0].isupper() for word in significant if word[0].isalpha())


def _split_company(title: str) -> tuple[str, str | None]:
    """A title and the company it names: "CEO at Acme" -> ("CEO", "Acme"); else (title, None)."""
    lowered = title.casefold()
    for joiner in _COMPANY_JOINERS:
        at = lowered.find(joiner)
        if at > 0 and _has_title_word(title[:at]):
            company = title[at + len(joiner) :].strip(" !,;:")
            return title[:at].strip(" ,;:"), company or None
    return title, None


def _after_name(line: str, names: frozenset[str]) -> str | None:
    """The title beside the name: "Joe Smith | Director, Product Management" gives
    "Director, Product Management"; a company after the title ("Jane Roe | CTO | Acme")
    gives "CTO at Acme"."""
    for separator in _NAME_SEPARATORS:
        parts = [_clean(part) for part in line.split(separator)]
        if len(parts) < 2 or not _names_sender(parts[0], names) or not _has_title_word(parts[1]):
            continue
        if len(parts) > 2 and parts[2] and not _is_contact(parts[2]):
            return f"{parts[1]} at {parts[2]}"
        return parts[1]
    return None


def _next_line(cleaned: list[str], index: int) -> str | None:
    return cleaned[index + 1] if index + 1 < len(cleaned) else None


def _title_at(cleaned: list[str], names: frozenset[str]) -> tuple[str | None, int | None]:
    """The title and the index of its line (None when it shares the name's line)."""
    name_index = None
    for index, line in enumerate(cleaned):
        inline = _after_name(line, names)
        if inline is not None:
            return inline, None
        if _names_sender(line, names):
            name_index = index
    if name_index is not None:
        below = _next_line(cleaned, name_index)
        if below is not None and _looks_like_title(below, under_name=True):
            return below, name_index + 1
    for index, line in enumerate(cleaned):
        if not _names_sender(line, names) and _looks_like_title(line, under_name=False):
            return line, index
    return None, None


def _legal_company(cleaned: list[str]) -> str | None:
    for line in cleaned:
        words = line.split()
        if not words or len(words) > MAX_COMPANY_WORDS or len(line) > MAX_TITLE_CHARS:
            continue
        if line.endswith(".") and words[-1].casefold() not in LEGAL_FORMS:
            continue
        if any(word.strip(",;").casefold() in LEGAL_FORMS for word in words[1:]):
            return line.strip(" !,;:")
    return None


def _company_below(cleaned: list[str], title_index: int | None) -> str | None:
    if title_index is None:
        return None
    below = _next_line(cleaned, title_index)
    if below is None or _is_contact(below) or _is_closing(below) or not below[0].isupper():
        return None
    if len(below.split()) > MAX_COMPANY_WORDS or len(below) > MAX_TITLE_CHARS:
        return None
    return below.strip(" !,;:")


# --- website ----------------------------------------------------------------


def _url_tail(line: str) -> str | None:
    """What follows "www." or "http(s)://" in ``line``, case-folded and bounded."""
    lowered = line.casefold()
    starts = [at for at in (lowered.find("http"), lowered.find("www.")) if at >= 0]
    if not starts:
        return None
    url = lowered[min(starts) : min(starts) + MAX_URL_CHARS]
    if not url.startswith("http"):
        return url
    scheme = url.find("://")
    return url[scheme + 3 :] if scheme in (4, 5) else None


def _host(line: str) -> str | None:
    url = _url_tail(line)
    if url is None:
        return None
    end = 0
    while end < len(url) and (url[end].isalnum() or url[end] in ".-"):
        end += 1
    host = url[:end].strip(".-").removeprefix("www.")
    return host if "." in host and host.isascii() else None


def _website(block: list[str]) -> str | None:
    for line in block:
        if "](" in line or "![" in line or _clean(line).casefold().startswith(_CLIENT_LINES):
            continue
        host = _host(line)
        if host is not None:
            return host
    return None


# --- the whole --------------------------------------------------------------


def _company(cleaned: list[str], title: str | None, title_index: int | None) -> str | None:
    """The company the title line names, else a legal form's line, else the line below."""
    named = _split_company(title)[1] if title is not None else None
    return named or _legal_company(cleaned) or _company_below(cleaned, title_index)


def read_signature(text: str, sender: str = "") -> SignatureFields:
    """The fields in the signature of ``text``, a message's plain text as its sender wrote
    it (quoted history may still be in it; it is not read).

    ``sender`` ("Name <address>", a name or an address) finds the name line;
    without it only job-title words make a title.
    """
    names = _sender_names(sender)
    block = _block(text, names, sender)
    if not block:
        return SignatureFields()
    cleaned = [_clean(line) for line in block if len(line) <= MAX_LINE_CHARS]
    cleaned = [line for line in cleaned if line]
    title, title_index = _title_at(cleaned, names)
    return SignatureFields(
        title=_split_company(title)[0] or None if title is not None else None,
        phones=_phones(block),
        company=_company(cleaned, title, title_index),
        website=_website(block),
    )
