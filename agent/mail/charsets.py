"""Charsets: bytes from mail decoded to text that is safe to store, never raising.

Mail declares its charsets, often wrongly, and sometimes not at all. A
declared label is read the way browsers read it, by the WHATWG Encoding
Standard's table of labels (``data/whatwg_labels.txt``, the standard's
encodings.json as data): ``iso-8859-1``, ``latin1`` and ``ascii`` mean
Windows-1252, ``gb2312`` means GBK, ``ks_c_5601-1987`` Windows-949,
``tis-620`` Windows-874 -- the supersets that the text under those labels is
written in in practice, so that a GBK-only character in a "gb2312" subject
is that character and not U+FFFD. A few spellings mail uses and the table
lacks (``latin-1``, ``shift-jis``) are read as the label they mean; a label
the table does not know, or whose encoding it replaces with U+FFFD for web
safety (ISO-2022-KR, HZ), is left to Python's codec of that name, and labels
Python knows but mail never means (``unicode-escape``, ``idna``) count as
unknown. A byte-order mark overrides the label, as in browsers. Decoding
then tries UTF-8 first where a label is often wrong, the declared codec, and
finally UTF-8 with every byte that is not UTF-8 read as Windows-1252, which
cannot fail. ``scrub`` removes what a database refuses.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources

__all__ = ["codec_for", "decode_bytes", "read_otherwise", "scrub", "whatwg_encoding"]


_PYTHON_CODECS: Mapping[str, str] = {
    "UTF-8": "utf-8",
    "IBM866": "cp866",
    "ISO-8859-8-I": "iso8859-8",
    "KOI8-R": "koi8-r",
    "KOI8-U": "koi8-u",
    "macintosh": "mac-roman",
    "x-mac-cyrillic": "mac-cyrillic",
    "GBK": "gb18030",
    "gb18030": "gb18030",
    "Big5": "big5hkscs",
    "EUC-JP": "euc-jp",
    "ISO-2022-JP": "iso2022-jp",
    "Shift_JIS": "cp932",
    "EUC-KR": "cp949",
    "UTF-16BE": "utf-16-be",
    "UTF-16LE": "utf-16-le",
}
"""The Python codec of each WHATWG encoding whose name Python does not spell alike
(ISO-8859-N and windows-N are derived). GBK is decoded as GB18030, as the standard's
GBK decoder does; Big5 as Big5-HKSCS, the standard's Big5."""

_MAIL_SPELLINGS: Mapping[str, str] = {
    "latin-1": "latin1",
    "latin-2": "latin2",
    "latin-9": "latin9",
    "shift-jis": "shift_jis",
    "x-mac-roman": "macintosh",
    "utf8mb4": "utf-8",
}
"""Spellings seen in mail that the standard does not list, as the label they mean."""

_SNIFFED_UTF16 = frozenset({"utf-16", "unicode", "ucs-2", "csunicode", "iso-10646-ucs-2"})
"""Labels naming UTF-16 without its byte order: read with Python's BOM-aware codec."""

_WESTERN_SINGLE_BYTE = frozenset({"cp1252", "iso8859-15", "latin-1", "iso8859-1"})
_NOT_MAIL_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@cache
def _labels() -> Mapping[str, str]:
    """The WHATWG table: lower-case label -> encoding name."""
    text = resources.files("agent.mail").joinpath("data/whatwg_labels.txt").read_text("utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            label, _, encoding = line.partition("\t")
            table[label.strip()] = encoding.strip()
    return table


def whatwg_encoding(label: str | None) -> str | None:
    """The WHATWG encoding a label means (``"windows-1252"`` for ``"latin1"``), else None."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    return _labels().get(_MAIL_SPELLINGS.get(name, name))


def codec_for(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None where there is no usable one."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").strip().lower()
    name = _MAIL_SPELLINGS.get(name, name)
    encoding = _labels().get(name)
    if name in _SNIFFED_UTF16:
        name = "utf-16"
    elif encoding is not None and encoding not in ("replacement", "x-user-defined"):
        name = _python_codec(encoding)
    elif name.startswith("cp-"):
        name = "cp" + name[3:]
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_MAIL_CHARSETS:
        return None
    return info.name


def read_otherwise(charset: str) -> bool:
    """Whether ``codec_for`` reads ``charset`` with another codec than Python's of that name.

    Python's own decoders (the ``email`` package's RFC 2047 words among them)
    read ``gb2312`` as GB2312 and ``iso-8859-1`` as ISO-8859-1, turning a
    GBK-only character into U+FFFD and Windows quotes into C1 controls; text
    under such a label must be decoded here instead.
    """
    ours = codec_for(charset)
    try:
        theirs: str | None = codecs.lookup(charset.strip().strip("\"'").strip()).name
    except (LookupError, ValueError):
        theirs = None
    return ours is not None and ours != theirs


def _python_codec(encoding: str) -> str:
    if encoding in _PYTHON_CODECS:
        return _PYTHON_CODECS[encoding]
    if encoding.startswith("windows-"):
        return "cp" + encoding[len("windows-") :]
    return encoding.lower().replace("iso-8859-", "iso8859-")


def _utf8_or_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Decode error handler: a byte that is not UTF-8 is read as Windows-1252."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("cp1252", errors="replace"), error.end


codecs.register_error("crm_sync_cp1252", _utf8_or_cp1252)


def decode_bytes(data: bytes, charset: str | None, *, prefer_utf8: bool = False) -> str:
    """Decode with the declared charset, else UTF-8, else Windows-1252: never raises.

    UTF-8 goes first where a label is often wrong: raw 8-bit headers, which
    have no label, and Western single-byte labels, which UTF-8 text often
    carries by mistake (the reverse, Latin-1 text that happens to be valid
    UTF-8, is rare).
    """
    codec = _bom_codec(data) or codec_for(charset)
    candidates = [codec] if codec else []
    if prefer_utf8 and codec in _WESTERN_SINGLE_BYTE and _UTF8_SEQUENCE.search(data):
        candidates = []  # UTF-8 with stray bytes: each read on its own, below
    if prefer_utf8 or codec in _WESTERN_SINGLE_BYTE:
        candidates.insert(0, "utf-8")
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except Exception:
            continue
    return data.decode("utf-8", errors="crm_sync_cp1252")


_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
"""A multi-byte UTF-8 sequence. A raw header holding one is UTF-8 with a stray byte or
two far more often than Windows-1252 text, whose label (a body's, often us-ascii or
iso-8859-1, both read as Windows-1252) never fails and would turn all of it to mojibake."""


def _bom_codec(data: bytes) -> str | None:
    """The codec a byte-order mark names: it overrides any label, as in browsers."""
    return next((codec for bom, codec in _BOMS if data.startswith(bom)), None)


_SURROGATES = re.compile("[\ud800-\udfff]")


def scrub(text: str) -> str:
    """Text safe to store: no NUL (PostgreSQL refuses it), no lone surrogates, no BOM."""
    if _SURROGATES.search(text):
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text.replace("\x00", "").lstrip("\ufeff")
