"""Charset labels read the way browsers read them (the WHATWG Encoding Standard's table)."""

from __future__ import annotations

import base64
import codecs
from importlib import resources

import pytest

from agent.mail.charsets import codec_for, decode_bytes, read_otherwise, whatwg_encoding
from agent.mail.text import header_str, parse_mime

GBK_ONLY = "会议 镕 喆"
"""Two characters GBK has and GB2312 lacks, beside two both have."""


def _table() -> dict[str, str]:
    text = resources.files("agent.mail").joinpath("data/whatwg_labels.txt").read_text("utf-8")
    rows = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return {label: encoding for label, encoding in rows}


@pytest.mark.parametrize(
    ("label", "encoding", "codec"),
    [
        ("gb2312", "GBK", "gb18030"),
        (" GB2312 ", "GBK", "gb18030"),
        ('"gbk"', "GBK", "gb18030"),
        ("iso-8859-1", "windows-1252", "cp1252"),
        ("latin1", "windows-1252", "cp1252"),
        ("latin-1", "windows-1252", "cp1252"),
        ("ascii", "windows-1252", "cp1252"),
        ("us-ascii", "windows-1252", "cp1252"),
        ("ks_c_5601-1987", "EUC-KR", "cp949"),
        ("euc-kr", "EUC-KR", "cp949"),
        ("tis-620", "windows-874", "cp874"),
        ("shift_jis", "Shift_JIS", "cp932"),
        ("big5", "Big5", "big5hkscs"),
        ("iso-8859-8-i", "ISO-8859-8-I", "iso8859-8"),
        ("koi8-u", "KOI8-U", "koi8-u"),
        ("x-mac-cyrillic", "x-mac-cyrillic", "mac-cyrillic"),
        ("utf8", "UTF-8", "utf-8"),
        ("unicode-1-1-utf-8", "UTF-8", "utf-8"),
        ("utf-16", "UTF-16LE", "utf-16"),
        ("utf-16be", "UTF-16BE", "utf-16-be"),
    ],
)
def test_labels_mean_what_they_mean_to_browsers(label: str, encoding: str, codec: str) -> None:
    assert whatwg_encoding(label) == encoding
    assert codec_for(label) == codecs.lookup(codec).name


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("iso-2022-kr", "iso2022_kr"),  # the standard's "replacement": mail means the real one
        ("utf-7", "utf-7"),  # not in the standard, Python has it
        ("cp-1252", "cp1252"),
        ("unicode-escape", None),
        ("idna", None),
        ("x-user-defined", None),
        ("no-such-charset", None),
        ("", None),
        (None, None),
    ],
)
def test_labels_outside_the_standard_fall_back_to_python_or_nothing(
    label: str | None, codec: str | None
) -> None:
    assert codec_for(label) == codec


def test_every_label_of_the_standard_has_a_python_codec() -> None:
    table = _table()

    assert len(table) > 200
    missing = {
        label
        for label, encoding in table.items()
        if encoding not in ("replacement", "x-user-defined") and codec_for(label) is None
    }
    assert missing == set()


def test_a_gb2312_body_with_a_gbk_only_character_decodes_whole() -> None:
    assert decode_bytes(GBK_ONLY.encode("gbk"), "gb2312") == GBK_ONLY


def test_a_latin1_label_on_windows_1252_text_keeps_its_quotes() -> None:
    assert decode_bytes("“quoted” – €5".encode("cp1252"), "iso-8859-1") == "“quoted” – €5"


def test_a_byte_order_mark_overrides_the_label() -> None:
    assert decode_bytes("héllo".encode("utf-16"), "iso-8859-1") == "héllo"
    assert decode_bytes(codecs.BOM_UTF8 + "héllo".encode(), "windows-1251") == "héllo"


def test_a_raw_gb2312_subject_with_a_gbk_only_character_decodes_whole() -> None:
    data = GBK_ONLY.encode("gbk")
    raw = b"Subject: " + data + b"\r\nContent-Type: text/plain; charset=gb2312\r\n\r\n" + data
    message = parse_mime(raw)

    assert header_str(message, "Subject") == GBK_ONLY


@pytest.mark.parametrize(
    ("word", "text"),
    [
        (b"=?gb2312?B?" + base64.b64encode(GBK_ONLY.encode("gbk")) + b"?=", GBK_ONLY),
        (b"=?iso-8859-1?Q?caf=E9_=93quoted=94?=", "caf\u00e9 \u201cquoted\u201d"),
        (b"=?utf-8?Q?caf=C3=A9?= =?gb2312?B?" + base64.b64encode("会议".encode("gbk")) + b"?=",
         "caf\u00e9会议"),
    ],
    ids=["gb2312-as-gbk", "latin1-as-windows-1252", "mixed-words"],
)  # fmt: skip
def test_an_encoded_word_subject_is_read_as_browsers_read_its_label(word: bytes, text: str) -> None:
    message = parse_mime(b"Subject: " + word + b"\r\nFrom: ann@acme.example\r\n\r\nhi")
    assert header_str(message, "Subject") == text


@pytest.mark.parametrize(
    ("label", "otherwise"),
    [
        ("gb2312", True),
        ("iso-8859-1", True),
        ("us-ascii", True),
        ("ks_c_5601-1987", True),
        ("tis-620", True),
        ("utf-8", False),
        ("UTF8", False),
        ("windows-1252", False),
        ("koi8-r", False),
        ("no-such-charset", False),
    ],
)
def test_labels_python_reads_otherwise_are_known(label: str, otherwise: bool) -> None:
    assert read_otherwise(label) is otherwise


def test_a_utf8_header_with_a_stray_byte_is_not_read_as_the_bodys_western_label() -> None:
    """us-ascii and iso-8859-1 are read as Windows-1252, which never fails: a raw UTF-8
    From with one Latin-1 byte would come out as mojibake under the body's label."""
    data = "Юникод запрещен".encode() + b"\xf1"
    body = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nhi"
    raw = b"From: " + data + b" <a@b.example>\r\n" + body
    assert header_str(parse_mime(raw), "From") == "Юникод запрещенñ <a@b.example>"
    assert decode_bytes("café “x”".encode("cp1252"), "iso-8859-1", prefer_utf8=True) == ("café “x”")
