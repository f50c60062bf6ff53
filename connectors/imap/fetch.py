"""UID FETCH with its responses parsed by a regular-expression lexer.

imapclient reads a FETCH response one character at a time in Python; on a
first sync that was most of what fetching cost the syncing process (about
50 tokens a message, mostly BODYSTRUCTURE). Here the same responses, as
imaplib hands them over, are cut into tokens by one compiled pattern and
built into the same values imapclient returns: keys in upper case
(``b"BODY[HEADER]"``, ``b"BODY[1]<0>"``), ``FLAGS`` as a tuple of bytes,
``INTERNALDATE`` as an aware datetime, ``BODYSTRUCTURE`` as imapclient's
``BodyData``, a ``SEQ`` for each message, keyed by UID (``ENVELOPE``, which
the connector never asks for, stays the raw tuple). Malformed responses
raise imapclient's ``ProtocolError``, as its own parser does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.datetime_util import parse_to_datetime
from imapclient.exceptions import ProtocolError
from imapclient.response_types import BodyData

from connectors.imap.wire import uid_command

_TOKEN = re.compile(
    rb"""[ \t\r\n]*(?:
        "((?:[^"\\]|\\.)*)"                                 # 1 quoted string
      | ([()])                                              # 2 parenthesis
      | \{(\d+)\}$                                          # 3 literal marker
      | ((?:[^ \t\r\n()"\[\x00-\x1f%]|\[[^\]]*\])+)           # 4 atom, [sections] included
      | ([^ \t\r\n])                                        # 5 any other character
    )""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPED = re.compile(rb'\\([\\"])')

Value = Any
"""None, int, bytes, or a tuple of values: what an IMAP response holds."""


def uid_fetch(
    client: IMAPClient, uids: Sequence[int], items: Sequence[str]
) -> dict[int, dict[bytes, Value]]:
    """``UID FETCH uids (items)``: per requested UID, what the server returned for it.

    The command goes through the imaplib connection imapclient drives
    (:func:`connectors.imap.wire.uid_command`); unsolicited responses for
    other messages are dropped, as imapclient drops them.
    """
    data = uid_command(client, "FETCH", ",".join(str(uid) for uid in uids), f"({' '.join(items)})")
    wanted = set(uids)
    return {uid: got for uid, got in parse_fetch(data).items() if uid in wanted}


def parse_fetch(
    records: Sequence[bytes | tuple[bytes, bytes] | None],
) -> dict[int, dict[bytes, Value]]:
    """FETCH responses as imaplib returns them -> message data keyed by UID (by sequence
    number for a response that carries no UID)."""
    if list(records) == [None]:
        return {}
    values = parse_values(records)
    if len(values) % 2:
        raise ProtocolError(f"unexpected end of FETCH responses: {values[-1]!r}")
    found: dict[int, dict[bytes, Value]] = {}
    for seq, attributes in zip(values[::2], values[1::2], strict=True):
        if not isinstance(seq, int):
            raise ProtocolError(f"invalid message ID: {seq!r}")
        if not isinstance(attributes, tuple) or len(attributes) % 2:
            raise ProtocolError(f"bad response type: {attributes!r}")
        key = seq
        data: dict[bytes, Value] = {b"SEQ": seq}
        for name, value in zip(attributes[::2], attributes[1::2], strict=True):
            if not isinstance(name, bytes):
                raise ProtocolError(f"bad attribute name: {name!r}")
            word = name.upper()
            if word == b"UID":
                if not isinstance(value, int):
                    raise ProtocolError(f"invalid UID: {value!r}")
                key = value
            elif word == b"INTERNALDATE":
                data[word] = _internal_date(value)
            elif word in (b"BODY", b"BODYSTRUCTURE"):
                if not isinstance(value, tuple):
                    raise ProtocolError(f"bad {word.decode()}: {value!r}")
                data[word] = BodyData.create(value)
            else:
                data[word] = value
        found.setdefault(key, {}).update(data)
    return found


def parse_values(records: Iterable[bytes | tuple[bytes, bytes] | None]) -> list[Value]:
    """The top-level values of responses, nested parentheses as tuples, literals in place."""
    stack: list[list[Value]] = [[]]
    for record in records:
        if record is None:
            continue
        text, literal = record if isinstance(record, tuple) else (record, None)
        for match in _TOKEN.finditer(text):
            quoted, paren, size, word, other = match.groups()
            if word is not None:
                stack[-1].append(_atom(word))
            elif quoted is not None:
                stack[-1].append(_ESCAPED.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
            elif paren == b"(":
                stack.append([])
            elif paren == b")":
                if len(stack) == 1:
                    raise ProtocolError(f"unbalanced ')' in {text!r}")
                closed = tuple(stack.pop())
                stack[-1].append(closed)
            elif size is not None:
                if literal is None or len(literal) != int(size):
                    raise ProtocolError(f"literal of {int(size)} bytes missing or cut in {text!r}")
                stack[-1].append(literal)
            elif other is not None:
                if other == b'"':
                    raise ProtocolError(f"unterminated string in {text!r}")
                stack[-1].append(other)
    if len(stack) != 1:
        raise ProtocolError("tuple incomplete at the end of the response")
    return stack[0]


def _atom(word: bytes) -> Value:
    if word == b"NIL":
        return None
    if word.isdigit() and (word[:1] != b"0" or len(word) == 1):
        return int(word)
    return word


def _internal_date(value: Value) -> Value:
    if not isinstance(value, bytes):
        return None
    try:
        return parse_to_datetime(value, normalise=False)
    except ValueError:
        return None
