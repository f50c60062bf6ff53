"""Charsets: bytes from mail decoded to text that is safe to store, never raising.

Mail declares its charsets, often wrongly, and sometimes not at all. A
declared label is first mapped to the codec its text usually needs: labels
whose content is in practice a superset (ISO-8859-1 is Windows-1252, GB2312
is GB18030, Shift_JIS is CP932), as the WHATWG encoding standard maps them;
labels Python knows but mail never means (``unicode-escape``, ``idna``) count
as unknown. Decoding then tries UTF-8 first where a label is often wrong, the
declared codec, and finally UTF-8 with every byte that is not UTF-8 read as
Windows-1252, which cannot fail. ``scrub`` removes what a database refuses.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["decode_bytes", "scrub"]


# Labels whose usual content is a superset the label does not admit to
# (the WHATWG encoding standard makes the same substitutions).
_CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "latin-9": "iso-8859-15",
    "x-mac-roman": "mac-roman",
    "ucs-2": "utf-16",
    "unicode-1-1-utf-8": "utf-8",
}
_WESTERN_SINGLE_BYTE = frozenset({"cp1252", "iso8859-15", "latin-1", "iso8859-1"})
_NOT_MAIL_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)


def _codec(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None where there is no usable one."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_SUPERSETS.get(name, name)
    if name.startswith("cp-"):
        name = "cp" + name[3:]
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_MAIL_CHARSETS:
        return None
    return info.name


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
    codec = _codec(charset)
    candidates = [codec] if codec else []
    if prefer_utf8 or codec in _WESTERN_SINGLE_BYTE:
        candidates.insert(0, "utf-8")
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except Exception:
            continue
    return data.decode("utf-8", errors="crm_sync_cp1252")


_SURROGATES = re.compile("[\ud800-\udfff]")


def scrub(text: str) -> str:
    """Text safe to store: no NUL (PostgreSQL refuses it), no lone surrogates, no BOM."""
    if _SURROGATES.search(text):
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text.replace("\x00", "").lstrip("\ufeff")
