"""One logged-in IMAP connection, the commands a sync sends on it, and their errors.

Commands, each read-only:

* LIST: one ``LIST "" "*" RETURN (SPECIAL-USE STATUS (UIDVALIDITY UIDNEXT
  HIGHESTMODSEQ))`` (LIST-STATUS, RFC 5819) finds the ``\\Sent`` folder and
  tells, with no further command, which folders changed. A server without
  LIST-STATUS gets a plain LIST, and an EXAMINE per folder tells the same.
* EXAMINE (no flag can change), with QRESYNC where the server offers it
  (``ENABLE QRESYNC`` once, before the first EXAMINE): ``EXAMINE folder
  (QRESYNC (uidvalidity modseq))`` also returns the UIDs expunged since that
  modseq (``VANISHED (EARLIER)``) and the flags of the messages changed
  since it. With CONDSTORE alone, ``UID SEARCH UID 1:last_uid MODSEQ
  modseq+1`` finds flag changes.
* ``UID SEARCH UID last_uid+1:* [SINCE date]`` for new mail, then per
  chunk of UIDs one ``UID FETCH (FLAGS INTERNALDATE RFC822.SIZE
  BODYSTRUCTURE)``: the outline, which tells where each message's first text
  part is and, with the sizes, how many bytes its header and text will
  take. The connector then fetches them in groups bounded by those bytes,
  with ``UID FETCH (BODY.PEEK[HEADER] BODY.PEEK[path]<0.N>)`` per distinct
  path of the first text part (``1`` for most mail, ``1.1`` under
  multipart/mixed + alternative; the header alone where there is no text
  part). The whole message is never fetched and ``\\Seen`` is never set
  (PEEK, EXAMINE).

Errors: a refused login is ``AuthError``; socket errors, timeouts, ``BYE`` and
``[UNAVAILABLE]``-like answers are ``TransientError``, after which the agent
resumes from the last committed batch (:func:`classify_error`).
"""

from __future__ import annotations

import contextlib
import re
import ssl
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, LoginError, ProtocolError

from connectors.errors import AuthError, ConnectorError, TransientError
from connectors.imap import wire
from connectors.imap.cursor import FolderState
from connectors.imap.fetch import parse_fetch, uid_fetch
from connectors.imap.message import as_text

Security = Literal["tls", "starttls", "plain"]

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
_RESPONSE_CODE = re.compile(r"\[([A-Z-]+)")
OUTLINE_ITEMS = ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE")


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
        reason = exc.strerror or str(exc) or type(exc).__name__
        return TransientError(f"IMAP connection failed: {reason}; check the host and port")
    return ConnectorError(f"IMAP command failed: {text}")


@dataclass(frozen=True)
class FolderStatus:
    """A folder's numbering as LIST-STATUS, STATUS or EXAMINE report it."""

    uidvalidity: int
    uidnext: int | None
    highestmodseq: int | None

    @classmethod
    def of(cls, figures: dict[bytes, Any]) -> FolderStatus:
        """From imapclient's figures (``{b"UIDVALIDITY": n, ...}``)."""
        return cls(
            uidvalidity=int(figures.get(b"UIDVALIDITY", 0)),
            uidnext=figures.get(b"UIDNEXT"),
            highestmodseq=figures.get(b"HIGHESTMODSEQ"),
        )


@dataclass(frozen=True)
class Examined:
    status: FolderStatus
    vanished: tuple[int, ...] = ()
    changed: tuple[int, ...] = ()


Listing = dict[str, tuple[str | None, FolderStatus | None]]
"""Folder name -> (special use, status where LIST-STATUS gave one)."""


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


@dataclass(frozen=True)
class Server:
    """Where and how to log in. ``token_provider`` returns a fresh XOAUTH2 access
    token and wins over ``password``."""

    host: str
    port: int
    security: Security
    username: str
    password: str | None = field(default=None, repr=False)
    token_provider: Callable[[], str] | None = field(default=None, repr=False)
    timeout: float = 60.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    def connect(self) -> IMAPClient:
        """A logged-in client; the connection is closed again if the login fails."""
        context = self.ssl_context or ssl.create_default_context()
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
            if self.token_provider is not None:
                client.oauth2_login(self.username, self.token_provider())
            else:
                client.login(self.username, self.password)
        except BaseException:
            disconnect(client)
            raise
        return client

    @contextlib.contextmanager
    def session(self) -> Iterator[ImapSession]:
        """A session on a new connection, logged out when the block ends."""
        client = self.connect()
        try:
            yield ImapSession(client)
        finally:
            disconnect(client)


def disconnect(client: IMAPClient) -> None:
    """LOGOUT where the connection still works; close the socket in any case."""
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()


class ImapSession:
    """One logged-in IMAP connection and the commands a sync sends on it.

    The server's capabilities decide which: LIST-STATUS, QRESYNC, CONDSTORE
    (module docstring). The commands imapclient has no call for go through
    :mod:`connectors.imap.wire`.
    """

    def __init__(self, client: IMAPClient) -> None:
        self.client = client
        caps = set(client.capabilities())
        self.condstore = b"CONDSTORE" in caps or b"QRESYNC" in caps
        self.qresync_offered = b"QRESYNC" in caps
        self.list_status = b"LIST-STATUS" in caps
        self.qresync = False
        self._examined_any = False

    def list_folders(self) -> Listing:
        """Every folder with its special use and, where LIST-STATUS exists, its status."""
        options = None
        if self.list_status:
            items = "UIDVALIDITY UIDNEXT" + (" HIGHESTMODSEQ" if self.condstore else "")
            options = f"SPECIAL-USE STATUS ({items})"
        listed, figures = wire.list_folders(self.client, options)
        statuses = {name: FolderStatus.of(values) for name, values in figures.items()}
        folders: Listing = {}
        for flags, _delimiter, name in listed:
            special = next((as_text(f) for f in flags if as_text(f) in _SPECIAL_USES), None)
            folders[str(name)] = (special, statuses.get(str(name)))
        return folders

    def examine(self, folder: str, state: FolderState | None) -> Examined:
        """EXAMINE ``folder``, with QRESYNC from ``state`` where the server can."""
        if not self._examined_any and self.qresync_offered:
            self.client.enable("QRESYNC")
            self.qresync = True
        self._examined_any = True
        parameters = ""
        if self.qresync and state and state.highestmodseq:
            parameters = f" (QRESYNC ({state.uidvalidity} {state.highestmodseq}))"
        elif self.condstore and not self.qresync:
            parameters = " (CONDSTORE)"
        figures, untagged = wire.examine(self.client, folder, parameters)
        status = FolderStatus.of(figures)
        if not (self.qresync and state and state.uidvalidity == status.uidvalidity):
            return Examined(status)
        vanished = [
            uid
            for line in untagged.get("VANISHED", [])
            for uid in parse_uid_set(as_text(line).replace("(EARLIER)", ""), state.last_uid)
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

    def outline(self, uids: Sequence[int]) -> dict[int, dict[bytes, Any]]:
        """Flags, date, size and structure of the ``uids`` the server still has."""
        return self._fetch(uids, OUTLINE_ITEMS)

    def texts(self, paths: Mapping[int, str], text_bytes: int) -> dict[int, dict[bytes, Any]]:
        """Header and first text part (up to ``text_bytes``) of each UID, the part at its
        path in ``paths`` ("": the header alone)."""
        by_path: dict[str, list[int]] = defaultdict(list)
        for uid, path in paths.items():
            by_path[path].append(uid)
        data: dict[int, dict[bytes, Any]] = {}
        for path, uids in by_path.items():
            items = ["BODY.PEEK[HEADER]"]
            if path:
                items.append(f"BODY.PEEK[{path}]<0.{text_bytes}>")
            for uid, got in self._fetch(uids, items).items():
                data.setdefault(uid, {}).update(got)
        return data

    def _fetch(self, uids: Sequence[int], items: Sequence[str]) -> dict[int, dict[bytes, Any]]:
        """``UID FETCH``; a message the server garbled on the wire comes back empty
        (which makes it a ``BadItem``), the others as they came."""
        try:
            return uid_fetch(self.client, uids, items)
        except ProtocolError:
            if len(uids) == 1:
                return {uids[0]: {}}
            return {uid: got for one in uids for uid, got in self._fetch([one], items).items()}
