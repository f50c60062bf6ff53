"""IMAP connector (kind ``imap``): any IMAP mailbox, incrementally, read-only.

Terms. A folder's messages carry UIDs that only grow; ``UIDVALIDITY`` names
the numbering, and when it changes every UID the client knew is void.
``UIDNEXT`` is the UID the next message will get. Where the server offers
CONDSTORE (RFC 7162) every change to a folder raises its ``HIGHESTMODSEQ``;
with QRESYNC, ``EXAMINE folder (QRESYNC (uidvalidity modseq))`` also returns
the UIDs expunged since that modseq (``VANISHED (EARLIER)``) and the flags of
the messages changed since it. RFC 6154 marks the sent folder ``\\Sent``.

Cursor::

    {"v": 1, "folders": {name: {"uidvalidity": n, "last_uid": n, "highestmodseq": n | None}}}

``last_uid`` moves to ``UIDNEXT - 1`` once a folder is done, so mail
expunged at its top does not look like news on the next run.
Every message of the folder with a UID up to ``last_uid`` has been handed
over (or lies outside the ``since`` window), and its flags and expunges are
known up to ``highestmodseq``. A folder whose UIDVALIDITY changed starts again
from nothing inside the same run (the agent's writes are idempotent); the key
``uidvalidity_changes`` counts such runs in a row and the third raises a
``ConnectorError``, because a server that renumbers on every visit would
otherwise have its folder downloaded again on every run.

One run:

1. LOGIN (or XOAUTH2), then one ``LIST "" "*" RETURN (SPECIAL-USE STATUS
   (UIDVALIDITY UIDNEXT HIGHESTMODSEQ))`` (LIST-STATUS, RFC 5819): it finds
   the ``\\Sent`` folder and tells, with no further command, which folders
   changed. An unchanged mailbox thus costs one round trip beyond login. A
   server without LIST-STATUS gets a plain LIST and then one EXAMINE per
   folder, which gives the same figures. LIST-STATUS asks for the status of
   every folder; on Dovecot that comes from its indexes, cheaply.
2. A changed folder is EXAMINEd (read-only: no flag can change), with QRESYNC
   when the server offers it (``ENABLE QRESYNC`` once, before the first
   EXAMINE). Expunged UIDs become ``SourceRemoved``; messages whose flags
   changed are fetched again, since their labels changed. With CONDSTORE
   alone, flag changes come from ``UID SEARCH UID 1:last_uid MODSEQ modseq+1``
   and expunges go unseen; without CONDSTORE only new mail is seen. Listing
   every UID to find expunges would cost as much as the folder is large on
   every run, and an expunge only drops a source row (the interaction
   stays), so it is not done.
3. New mail: ``UID SEARCH UID last_uid+1:* [SINCE date]``, then UID batches.
   Each batch is one ``UID FETCH (FLAGS INTERNALDATE BODYSTRUCTURE
   BODY.PEEK[HEADER] BODY.PEEK[1]<0.N>)``: part 1 is the first
   text part of most mail (a single-part message, or a multipart whose first
   part is text). Only the messages whose BODYSTRUCTURE puts the first text
   part elsewhere (``1.1`` under multipart/mixed + alternative) cost a second
   ``UID FETCH BODY.PEEK[path]<0.N>``, one per distinct path. The whole
   message is never fetched and ``\\Seen`` is never set (PEEK, EXAMINE).
   ``RFC822.SIZE`` is not asked for: the part sizes in BODYSTRUCTURE already
   tell whether the text was cut.

``MailMessage.raw`` is one parseable message: for a single-part message the
header and its body cut to N bytes; for a multipart message the header with
its Content-Type and Content-Transfer-Encoding replaced by those of the text
part (type, subtype and charset from BODYSTRUCTURE), followed by that part's
body cut to N bytes. A cut falls at the end of a line, so base64 and
quoted-printable stay decodable. ``truncated`` is set when anything was left
out. Labels are the message's flags (not the per-session ``\\Recent``) plus
the folder's special use.

Errors: a refused login is ``AuthError``; socket errors, timeouts, ``BYE`` and
``[UNAVAILABLE]``-like answers are ``TransientError``, after which the agent
resumes from the last committed batch. A message whose FETCH response cannot
be used is yielded as ``Unreadable`` in its batch, for the agent to
quarantine, so one broken message never stops the sync.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any, Literal, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError, ProtocolError
from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_response

from connectors.errors import AuthError, BadItem, ConnectorError, CursorInvalid, TransientError
from connectors.imap.fetch import parse_fetch, uid_fetch
from connectors.records import Batch, Cursor, Item, MailMessage, SourceRemoved, Unreadable

log = logging.getLogger(__name__)
T = TypeVar("T")

Security = Literal["tls", "starttls", "plain"]

CURSOR_VERSION = 1
DEFAULT_BATCH_SIZE = 500
DEFAULT_TEXT_BYTES = 16384
MAX_UIDVALIDITY_CHANGES = 3
AUTH_HINT = (
    "check the IMAP user name and password (providers with two-step login want an app "
    "password), or the OAuth grant"
)

_SPECIAL_USES = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)
_AUTH_CODES = frozenset(
    {"AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED", "PRIVACYREQUIRED"}
)
_TRANSIENT_CODES = frozenset(
    {"UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG", "CONTACTADMIN", "NONEXISTENT"}
)
_CHANGE_RESPONSES = frozenset({b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED"})
_IDLE_SLICE = 25 * 60.0
_RESPONSE_CODE = re.compile(r"\[([A-Z-]+)")
_TOKEN = re.compile(rb"[^\x21-\x7e]|[()<>@,;:\\\"/\[\]?=]")


# -- errors --------------------------------------------------------------------------------


def classify_error(exc: BaseException) -> ConnectorError:
    """Map an imapclient/socket failure onto the connector error the agent acts on.

    The RFC 5530 response code decides first: ``[UNAVAILABLE]`` on a LOGIN is
    a server hiccup, not a wrong password.
    """
    if isinstance(exc, ConnectorError):
        return exc
    text = str(exc)
    match = _RESPONSE_CODE.search(text)
    code = match.group(1) if match else ""
    if code in _TRANSIENT_CODES:
        return TransientError(f"IMAP server busy or unavailable: {text}")
    if isinstance(exc, LoginError) or code in _AUTH_CODES:
        return AuthError(f"IMAP login refused: {text}", hint=AUTH_HINT)
    if isinstance(exc, IMAPClientAbortError):
        return TransientError(f"IMAP connection lost: {text}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectorError(f"the IMAP server's TLS certificate is not trusted: {text}")
    if isinstance(exc, OSError):
        return TransientError(f"IMAP connection failed: {exc!r}")
    return ConnectorError(f"IMAP command failed: {text}")


# -- cursor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderState:
    """What one folder's sync has covered; see the module docstring."""

    uidvalidity: int
    last_uid: int = 0
    highestmodseq: int | None = None
    uidvalidity_changes: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "highestmodseq": self.highestmodseq,
        }
        if self.uidvalidity_changes:
            out["uidvalidity_changes"] = self.uidvalidity_changes
        return out


def load_cursor(cursor: Cursor | None) -> dict[str, FolderState]:
    """Folder states from a stored cursor; one that does not parse means a full resync."""
    if cursor is None:
        return {}
    try:
        if cursor["v"] != CURSOR_VERSION:
            raise ValueError(f"version {cursor['v']!r}")
        states = {}
        for name, raw in cursor["folders"].items():
            modseq = raw.get("highestmodseq")
            states[str(name)] = FolderState(
                uidvalidity=int(raw["uidvalidity"]),
                last_uid=int(raw["last_uid"]),
                highestmodseq=None if modseq is None else int(modseq),
                uidvalidity_changes=int(raw.get("uidvalidity_changes", 0)),
            )
        return states
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CursorInvalid(f"unreadable IMAP cursor ({exc!r}); a full sync follows") from exc


def dump_cursor(states: Mapping[str, FolderState]) -> Cursor:
    return {"v": CURSOR_VERSION, "folders": {name: s.to_json() for name, s in states.items()}}


# -- MIME assembly (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class TextPart:
    """The first text part as BODYSTRUCTURE describes it; ``path`` is its IMAP part number."""

    path: str
    subtype: str
    charset: str
    encoding: str
    size: int


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _param(params: object, name: str) -> str:
    if not isinstance(params, tuple | list):
        return ""
    pairs = zip(params[::2], params[1::2], strict=False)
    return next((_text(v) for k, v in pairs if _text(k).lower() == name), "")


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _is_multipart(structure: Sequence[Any] | None) -> bool:
    return structure is not None and len(structure) > 0 and isinstance(structure[0], list)


def first_text_part(structure: Sequence[Any] | None) -> TextPart | None:
    """The first ``text/*`` leaf, depth first, not looking inside attached messages."""
    if not structure:
        return None
    if _is_multipart(structure):
        return _first_in_multipart(structure[0], "")
    return _leaf(structure, "1")


def _first_in_multipart(parts: Sequence[Any], prefix: str) -> TextPart | None:
    for index, part in enumerate(parts, start=1):
        path = f"{prefix}{index}"
        if _is_multipart(part):
            found = _first_in_multipart(part[0], path + ".")
        else:
            found = _leaf(part, path)
        if found:
            return found
    return None


def _leaf(part: Sequence[Any], path: str) -> TextPart | None:
    if len(part) < 7 or _text(part[0]).lower() != "text":
        return None
    return TextPart(
        path=path,
        subtype=_text(part[1]).lower() or "plain",
        charset=_param(part[2], "charset"),
        encoding=_text(part[5]).lower() or "7bit",
        size=_int(part[6]),
    )


def _newline(header: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in header else b"\n"


def _header_fields(header: bytes) -> bytes:
    """The header without the blank line that ends it."""
    return header.rstrip(b"\r\n") + _newline(header) if header.strip() else b""


def _without_fields(header: bytes, names: frozenset[bytes]) -> bytes:
    """``header`` minus the fields in ``names`` (lower-case), continuation lines included."""
    kept: list[bytes] = []
    dropping = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.split(b":", 1)[0].strip().lower() in names
        if not dropping:
            kept.append(line)
    return b"".join(kept)


def _safe_token(value: str, default: str) -> str:
    cleaned = _TOKEN.sub(b"", value.encode("ascii", "ignore")).decode()
    return cleaned or default


def _content_headers(part: TextPart, newline: bytes) -> bytes:
    charset = part.charset.replace("\\", "").replace('"', "").replace("\r", "").replace("\n", "")
    ctype = f"Content-Type: text/{_safe_token(part.subtype, 'plain')}"
    if charset:
        ctype += f'; charset="{charset}"'
    cte = f"Content-Transfer-Encoding: {_safe_token(part.encoding, '7bit')}"
    return ctype.encode("utf-8", "replace") + newline + cte.encode() + newline


def _cut(body: bytes, complete: bool) -> bytes:
    """A partial body up to its last whole line, so decoders do not meet half a token."""
    if complete:
        return body
    end = body.rfind(b"\n")
    return body[: end + 1] if end >= 0 else body


def assemble_raw(
    header: bytes,
    structure: Sequence[Any] | None,
    part: TextPart | None,
    body: bytes,
    text_bytes: int,
) -> tuple[bytes, bool]:
    """One parseable message from the header and the first text part: ``(raw, truncated)``."""
    multipart = _is_multipart(structure)
    fields = _header_fields(header)
    newline = _newline(header)
    if part is None:
        if multipart:
            stub = TextPart(path="", subtype="plain", charset="", encoding="7bit", size=0)
            fields = _without_fields(fields, _CONTENT_FIELDS) + _content_headers(stub, newline)
        return fields + newline, True
    complete = len(body) < text_bytes or (0 < part.size <= len(body))
    if multipart:
        fields = _without_fields(fields, _CONTENT_FIELDS) + _content_headers(part, newline)
    return fields + newline + _cut(body, complete), multipart or not complete


_CONTENT_FIELDS = frozenset({b"content-type", b"content-transfer-encoding"})


def _labels(flags: Iterable[object], special_use: str | None) -> frozenset[str]:
    labels = {_text(flag) for flag in flags} - {"\\Recent"}
    if special_use:
        labels.add(special_use)
    return frozenset(labels)


def _body_key(path: str) -> bytes:
    return f"BODY[{path}]<0>".encode()


def build_message(
    *,
    folder: str,
    uidvalidity: int,
    uid: int,
    data: Mapping[bytes, Any],
    mailbox: str,
    special_use: str | None,
    text_bytes: int,
) -> MailMessage:
    """A ``MailMessage`` from one FETCH response; ``BadItem`` when it cannot be used."""
    source_id = f"{folder}/{uidvalidity}/{uid}"
    header = data.get(b"BODY[HEADER]")
    if not isinstance(header, bytes):
        raise BadItem(source_id, "the server returned no header for this message")
    structure = data.get(b"BODYSTRUCTURE")
    part = first_text_part(structure)
    body = data.get(_body_key(part.path), b"") if part else b""
    raw, truncated = assemble_raw(
        header, structure, part, body if isinstance(body, bytes) else b"", text_bytes
    )
    internal_date = data.get(b"INTERNALDATE")
    return MailMessage(
        source_id=source_id,
        mailbox=mailbox,
        raw=raw,
        labels=_labels(data.get(b"FLAGS") or (), special_use),
        internal_date=_utc(internal_date) if isinstance(internal_date, datetime) else None,
        truncated=truncated,
    )


# -- protocol ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderStatus:
    """A folder's numbering as LIST-STATUS, STATUS or EXAMINE report it."""

    uidvalidity: int
    uidnext: int | None
    highestmodseq: int | None


@dataclass(frozen=True)
class Examined:
    status: FolderStatus
    vanished: tuple[int, ...] = ()
    changed: tuple[int, ...] = ()


def _utc(value: datetime) -> datetime:
    """INTERNALDATE in UTC: imapclient's own zone type cannot be pickled (to a planning worker)."""
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def unchanged(state: FolderState | None, status: FolderStatus | None) -> bool:
    """Whether a folder's status proves nothing happened since ``state``."""
    if state is None or status is None or status.uidnext is None:
        return False
    return (
        status.uidvalidity == state.uidvalidity
        and status.uidnext <= state.last_uid + 1
        and (status.highestmodseq is None or status.highestmodseq == state.highestmodseq)
    )


def parse_uid_set(text: str, upto: int) -> list[int]:
    """``1:3,7`` -> ``[1, 2, 3, 7]``, keeping UIDs up to ``upto``.

    A server may answer VANISHED with wide ranges that include UIDs that never
    existed, so the ranges are clipped before they are expanded.
    """
    uids: list[int] = []
    for item in text.split(","):
        low, _, high = item.strip().partition(":")
        if not low.isdigit():
            continue
        first, last = int(low), int(high) if high.isdigit() else int(low)
        uids.extend(range(min(first, last), min(max(first, last), upto) + 1))
    return uids


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Session:
    """One logged-in IMAP connection and the few raw commands imapclient lacks.

    imapclient has no call for EXAMINE with a CONDSTORE/QRESYNC parameter nor
    for LIST-STATUS; those go through its ``_command_and_check``/imaplib layer
    with the folder names it encodes itself.
    """

    def __init__(self, client: IMAPClient) -> None:
        self.client = client
        caps = set(client.capabilities())
        self.condstore = b"CONDSTORE" in caps or b"QRESYNC" in caps
        self.qresync_offered = b"QRESYNC" in caps
        self.list_status = b"LIST-STATUS" in caps
        self.qresync = False
        self._examined_any = False

    def list_folders(self) -> dict[str, tuple[str | None, FolderStatus | None]]:
        """Every folder with its special use and, where LIST-STATUS exists, its status."""
        imap = self.client._imap
        imap.untagged_responses = {}
        args = ['""', '"*"']
        if self.list_status:
            items = "UIDVALIDITY UIDNEXT" + (" HIGHESTMODSEQ" if self.condstore else "")
            args += ["RETURN", f"(SPECIAL-USE STATUS ({items}))"]
        typ, data = imap._simple_command("LIST", *args)
        self.client._checkok("list", typ, data)
        _, listed = imap._untagged_response(typ, data, "LIST")
        statuses = {}
        for line in imap.untagged_responses.pop("STATUS", []):
            name, values = parse_response([line])
            pairs = dict(zip(values[::2], values[1::2], strict=False))
            statuses[self._folder_name(name)] = FolderStatus(
                uidvalidity=int(pairs.get(b"UIDVALIDITY", 0)),
                uidnext=pairs.get(b"UIDNEXT"),
                highestmodseq=pairs.get(b"HIGHESTMODSEQ"),
            )
        folders: dict[str, tuple[str | None, FolderStatus | None]] = {}
        for flags, _delimiter, name in self.client._proc_folder_list(listed):
            special = next((_text(f) for f in flags if _text(f) in _SPECIAL_USES), None)
            folders[str(name)] = (special, statuses.get(str(name)))
        return folders

    def _folder_name(self, name: object) -> str:
        if isinstance(name, bytes):
            return str(decode_utf7(name))
        return str(name)

    def examine(self, folder: str, state: FolderState | None) -> Examined:
        """EXAMINE ``folder``, with QRESYNC from ``state`` where the server can."""
        if not self._examined_any and self.qresync_offered:
            self.client.enable("QRESYNC")
            self.qresync = True
        self._examined_any = True
        quoted = self.client._normalise_folder(folder)
        if isinstance(quoted, bytes):
            quoted = quoted.decode("ascii")
        if self.qresync and state and state.highestmodseq:
            quoted += f" (QRESYNC ({state.uidvalidity} {state.highestmodseq}))"
        elif self.condstore and not self.qresync:
            quoted += " (CONDSTORE)"
        self.client._command_and_check("select", quoted, True)
        untagged = self.client._imap.untagged_responses
        response = self.client._process_select_response(untagged)
        status = FolderStatus(
            uidvalidity=int(response.get(b"UIDVALIDITY", 0)),
            uidnext=response.get(b"UIDNEXT"),
            highestmodseq=response.get(b"HIGHESTMODSEQ"),
        )
        if not (self.qresync and state and state.uidvalidity == status.uidvalidity):
            return Examined(status)
        vanished = [
            uid
            for line in untagged.get("VANISHED", [])
            for uid in parse_uid_set(_text(line).replace("(EARLIER)", ""), state.last_uid)
        ]
        fetched = parse_fetch(untagged.get("FETCH", []))
        changed = sorted(uid for uid in fetched if isinstance(uid, int) and uid <= state.last_uid)
        return Examined(status, tuple(vanished), tuple(changed))

    def changed_since(self, last_uid: int, modseq: int) -> list[int]:
        """UIDs up to ``last_uid`` whose flags changed after ``modseq`` (CONDSTORE's MODSEQ key)."""
        found = self.client.search(["UID", f"1:{last_uid}", "MODSEQ", str(modseq + 1)])
        return sorted(uid for uid in found if uid <= last_uid)

    def search_new(self, last_uid: int, since: date | None) -> list[int]:
        criteria: list[object] = ["UID", f"{last_uid + 1}:*"]
        if since:
            criteria += ["SINCE", since]
        return sorted(uid for uid in self.client.search(criteria) if uid > last_uid)

    def fetch(self, uids: Sequence[int], text_bytes: int) -> dict[int, dict[bytes, Any]]:
        """Header, structure and first text part of ``uids``; a message the server
        garbled on the wire comes back empty, which makes it a ``BadItem``."""
        items = [
            "FLAGS", "INTERNALDATE", "BODYSTRUCTURE",
            "BODY.PEEK[HEADER]", f"BODY.PEEK[1]<0.{text_bytes}>",
        ]  # fmt: skip
        try:
            data = uid_fetch(self.client, uids, items)
        except ProtocolError:
            if len(uids) == 1:
                return {uids[0]: {}}
            return {uid: got for one in uids for uid, got in self.fetch([one], text_bytes).items()}
        elsewhere: dict[str, list[int]] = defaultdict(list)
        for uid, got in data.items():
            part = first_text_part(got.get(b"BODYSTRUCTURE"))
            if part and part.path != "1":
                elsewhere[part.path].append(uid)
        for path, group in elsewhere.items():
            parts = uid_fetch(self.client, group, [f"BODY.PEEK[{path}]<0.{text_bytes}>"])
            for uid, got in parts.items():
                if uid in data:
                    data[uid].update(got)
        return data


def _mark_last(items: Iterable[T]) -> Iterator[tuple[bool, T]]:
    """Each item with whether it is the last, looking one ahead (the items stay lazy)."""
    iterator = iter(items)
    try:
        held = next(iterator)
    except StopIteration:
        return
    for item in iterator:
        yield False, held
        held = item
    yield True, held


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- the connector -------------------------------------------------------------------------


class ImapConnector:
    """Changes of an IMAP mailbox since a cursor; see the module docstring.

    ``password`` is the plain secret (the config layer expands ``${ENV}``);
    ``oauth2_token_provider`` returns a fresh access token for XOAUTH2 and
    wins over the password. ``folders`` adds folders by name to INBOX and the
    ``\\Sent`` folder (``default_folders=False`` leaves only the named ones).
    """

    kind = "imap"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        username: str,
        password: str | None = None,
        port: int | None = None,
        security: Security = "tls",
        address: str | None = None,
        folders: Sequence[str] = (),
        default_folders: bool = True,
        since: date | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        text_bytes: int = DEFAULT_TEXT_BYTES,
        oauth2_token_provider: Callable[[], str] | None = None,
        idle: bool = False,
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("tls", "starttls", "plain"):
            raise ValueError(f"security must be tls, starttls or plain, not {security!r}")
        if security == "plain" and not _is_loopback(host):
            raise ValueError(
                f"security = 'plain' would send the password in clear to {host!r}; it is "
                "allowed for a loopback host only: use 'tls' or 'starttls'"
            )
        if password is None and oauth2_token_provider is None:
            raise ValueError("an IMAP connector needs a password or an OAuth2 token provider")
        owner = address or (username if "@" in username else "")
        if not owner:
            raise ValueError("set the mailbox owner's address: the user name is not one")
        if batch_size < 1 or text_bytes < 1:
            raise ValueError("batch_size and text_bytes must be positive")
        self.name = name
        self.host = host
        self.port = port or (993 if security == "tls" else 143)
        self.username = username
        self.security = security
        self.address = owner.lower()
        self.folders = tuple(folders)
        self.default_folders = default_folders
        self.since = since
        self.batch_size = batch_size
        self.text_bytes = text_bytes
        self.idle = idle
        self.timeout = timeout
        self._password = password
        self._token_provider = oauth2_token_provider
        self._ssl_context = ssl_context
        self._idle_client: IMAPClient | None = None
        self._inbox_seen: FolderStatus | None = None

    def __repr__(self) -> str:
        return f"ImapConnector({self.name!r}, {self.username}@{self.host}:{self.port})"

    # -- connection ------------------------------------------------------------------------

    def _connect(self) -> IMAPClient:
        context = self._ssl_context or ssl.create_default_context()
        client = IMAPClient(
            self.host,
            port=self.port,
            ssl=self.security == "tls",
            ssl_context=context if self.security == "tls" else None,
            timeout=self.timeout,
        )
        client.normalise_times = False
        try:
            if self.security == "starttls":
                client.starttls(context)
            if self._token_provider is not None:
                client.oauth2_login(self.username, self._token_provider())
            else:
                client.login(self.username, self._password)
        except BaseException:
            _disconnect(client)
            raise
        return client

    @contextlib.contextmanager
    def _session(self) -> Iterator[_Session]:
        client = self._connect()
        try:
            yield _Session(client)
        finally:
            _disconnect(client)

    # -- sync ------------------------------------------------------------------------------

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of new, changed and removed messages since ``cursor`` (None: everything)."""
        states = load_cursor(cursor)
        try:
            with self._session() as session:
                yield from self._sync(session, states)
        except ConnectorError:
            raise
        except (IMAPClientError, OSError) as exc:
            raise classify_error(exc) from exc

    def _targets(self, listed: Mapping[str, tuple[str | None, FolderStatus | None]]) -> list[str]:
        names: list[str] = []
        if self.default_folders:
            names.append("INBOX")
            names += [name for name, (special, _) in listed.items() if special == "\\Sent"][:1]
        for name in self.folders:
            if name not in listed:
                log.warning("%s: folder %r does not exist on the server; skipped", self.name, name)
            elif name not in names:
                names.append(name)
        return names

    def _sync(self, session: _Session, states: dict[str, FolderState]) -> Iterator[Batch]:
        listed = session.list_folders()
        targets = self._targets(listed)
        for gone in set(states) - set(targets):
            del states[gone]
        for folder in targets:
            special, status = listed[folder]
            yield from self._sync_folder(session, folder, special, status, states)

    def _sync_folder(
        self,
        session: _Session,
        folder: str,
        special: str | None,
        status: FolderStatus | None,
        states: dict[str, FolderState],
    ) -> Iterator[Batch]:
        old = states.get(folder)
        examined = None if unchanged(old, status) else session.examine(folder, old)
        if examined is not None:
            status = examined.status
        if folder == "INBOX":
            self._inbox_seen = status
        if old is not None and unchanged(old, status):
            if old.uidvalidity_changes:
                states[folder] = replace(old, uidvalidity_changes=0)
                yield Batch([], dump_cursor(states))
            return
        assert examined is not None
        current = examined.status
        state = self._restart_if_renumbered(folder, old, current)

        def emit(items: Sequence[Item], new_state: FolderState) -> Batch:
            states[folder] = new_state
            return Batch(list(items), dump_cursor(states))

        committed = old
        after_changes = replace(state, highestmodseq=current.highestmodseq)
        if state.highestmodseq is not None and current.highestmodseq != state.highestmodseq:
            for last, items in _mark_last(self._changes(session, folder, special, state, examined)):
                committed = after_changes if last else state
                yield emit(items, committed)
        state = after_changes

        for chunk in _chunks(session.search_new(state.last_uid, self.since), self.batch_size):
            items = self._messages(session, folder, special, state.uidvalidity, chunk, known=False)
            state = replace(state, last_uid=chunk[-1])
            committed = state
            yield emit(items, state)

        if current.uidnext:
            state = replace(state, last_uid=max(state.last_uid, current.uidnext - 1))
        if state != committed:
            yield emit([], state)

    def _restart_if_renumbered(
        self, folder: str, old: FolderState | None, current: FolderStatus
    ) -> FolderState:
        if old is None:
            return FolderState(uidvalidity=current.uidvalidity)
        if old.uidvalidity == current.uidvalidity:
            return replace(old, uidvalidity_changes=0)
        changes = old.uidvalidity_changes + 1
        if changes >= MAX_UIDVALIDITY_CHANGES:
            raise ConnectorError(
                f"{self.name}: UIDVALIDITY of folder {folder!r} changed on {changes} syncs in a "
                "row, so every sync downloads it again; the server is not keeping its UIDs "
                "(check its index files), then run a full sync of this connector"
            )
        log.warning(
            "%s: UIDVALIDITY of %r changed (%s -> %s); syncing the folder again",
            self.name, folder, old.uidvalidity, current.uidvalidity,
        )  # fmt: skip
        return FolderState(uidvalidity=current.uidvalidity, uidvalidity_changes=changes)

    def _changes(
        self,
        session: _Session,
        folder: str,
        special: str | None,
        state: FolderState,
        examined: Examined,
    ) -> Iterator[list[Item]]:
        """Item lists for the expunges and flag changes of already-synced messages."""
        assert state.highestmodseq is not None
        if session.qresync:
            vanished, changed = set(examined.vanished), examined.changed
        elif session.condstore and state.last_uid:
            vanished = set()
            changed = tuple(session.changed_since(state.last_uid, state.highestmodseq))
        else:
            return
        for chunk in _chunks(sorted(vanished), self.batch_size):
            yield [SourceRemoved(f"{folder}/{state.uidvalidity}/{uid}") for uid in chunk]
        refetch = [uid for uid in changed if uid not in vanished]
        for chunk in _chunks(refetch, self.batch_size):
            yield self._messages(session, folder, special, state.uidvalidity, chunk, known=True)

    def _messages(
        self,
        session: _Session,
        folder: str,
        special: str | None,
        uidvalidity: int,
        chunk: Sequence[int],
        *,
        known: bool,
    ) -> list[Item]:
        """The chunk's messages; one the server no longer has is removed if ``known``.

        An unusable response becomes an ``Unreadable`` item.
        """
        data = session.fetch(chunk, self.text_bytes)
        items: list[Item] = []
        for uid in chunk:
            if uid not in data:
                if known:
                    items.append(SourceRemoved(f"{folder}/{uidvalidity}/{uid}"))
                continue
            try:
                items.append(
                    build_message(
                        folder=folder,
                        uidvalidity=uidvalidity,
                        uid=uid,
                        data=data[uid],
                        mailbox=self.address,
                        special_use=special,
                        text_bytes=self.text_bytes,
                    )
                )
            except BadItem as bad:
                log.warning("imap %s: unreadable message %s: %s", self.name, bad.source_id, bad)
                items.append(Unreadable(bad.source_id, bad.reason))
        return items

    # -- what the server holds (verification) -----------------------------------------------

    def inventory(self, cursor: Cursor | None = None) -> Iterator[str]:
        """``folder/uidvalidity/uid`` of every message in the synced folders (within ``since``).

        With ``cursor``, only what it covers: the folders it knows, under the
        same UIDVALIDITY, up to their ``last_uid``. One EXAMINE and one UID
        SEARCH per folder; no message is fetched.
        """
        for _folder, source_ids in self._held(cursor):
            yield from source_ids

    def folder_counts(self) -> dict[str, int]:
        """Messages per synced folder (within ``since``): what a first sync would read."""
        return {folder: len(source_ids) for folder, source_ids in self._held(None)}

    def _held(self, cursor: Cursor | None) -> Iterator[tuple[str, list[str]]]:
        states = load_cursor(cursor) if cursor is not None else None
        try:
            with self._session() as session:
                for folder in self._targets(session.list_folders()):
                    state = states.get(folder) if states is not None else None
                    if states is not None and state is None:
                        continue
                    uidvalidity = session.examine(folder, None).status.uidvalidity
                    if state is not None and state.uidvalidity != uidvalidity:
                        continue
                    yield (
                        folder,
                        [
                            f"{folder}/{uidvalidity}/{uid}"
                            for uid in session.search_new(0, self.since)
                            if state is None or uid <= state.last_uid
                        ],
                    )
        except ConnectorError:
            raise
        except (IMAPClientError, OSError) as exc:
            raise classify_error(exc) from exc

    def lookup(self, source_ids: Iterable[str]) -> Iterator[Item]:
        """The messages with these source ids, fetched as ``fetch`` does; ids whose
        folder or UIDVALIDITY is gone yield nothing."""
        wanted: dict[tuple[str, int], list[int]] = defaultdict(list)
        for source_id in source_ids:
            name, validity, uid = source_id.rsplit("/", 2)
            wanted[(name, int(validity))].append(int(uid))
        try:
            with self._session() as session:
                listed = session.list_folders()
                for (folder, uidvalidity), uids in wanted.items():
                    if folder not in listed:
                        continue
                    if session.examine(folder, None).status.uidvalidity != uidvalidity:
                        continue
                    special = listed[folder][0]
                    for chunk in _chunks(sorted(uids), self.batch_size):
                        yield from self._messages(
                            session, folder, special, uidvalidity, chunk, known=False
                        )
        except ConnectorError:
            raise
        except (IMAPClientError, OSError) as exc:
            raise classify_error(exc) from exc

    # -- low latency -----------------------------------------------------------------------

    def wait_for_changes(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True as soon as INBOX changes.

        With ``idle`` set and IDLE offered, one connection is kept in IDLE on
        INBOX between calls; a change since the last ``fetch`` counts too.
        Otherwise this only waits and returns False: the caller polls.
        """
        if not self.idle:
            time.sleep(timeout)
            return False
        try:
            return self._idle_wait(timeout)
        except (IMAPClientError, OSError) as exc:
            self.close()
            raise classify_error(exc) from exc

    def _idle_wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if self._idle_client is None:
            client = self._connect()
            self._idle_client = client
            if b"IDLE" not in client.capabilities():
                self.close()
                self.idle = False
                log.info("%s: the server has no IDLE; polling instead", self.name)
                time.sleep(max(0.0, deadline - time.monotonic()))
                return False
            selected = client.select_folder("INBOX", readonly=True)
            now = FolderStatus(
                uidvalidity=int(selected.get(b"UIDVALIDITY", 0)),
                uidnext=selected.get(b"UIDNEXT"),
                highestmodseq=selected.get(b"HIGHESTMODSEQ"),
            )
            seen = self._inbox_seen
            if seen is not None and (now.uidvalidity, now.uidnext) != (
                seen.uidvalidity,
                seen.uidnext,
            ):
                return True
        client = self._idle_client
        while (remaining := deadline - time.monotonic()) > 0:
            client.idle()
            try:
                responses = client.idle_check(timeout=min(remaining, _IDLE_SLICE))
            finally:
                client.idle_done()
            if any(_is_change(response) for response in responses):
                return True
        return False

    def close(self) -> None:
        """Log out the IDLE connection, if any."""
        client, self._idle_client = self._idle_client, None
        if client is not None:
            _disconnect(client)


def _disconnect(client: IMAPClient) -> None:
    """LOGOUT where the connection still works; close the socket in any case."""
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()


def _is_change(response: object) -> bool:
    return isinstance(response, tuple) and any(
        isinstance(part, bytes) and part.upper() in _CHANGE_RESPONSES for part in response[:2]
    )
