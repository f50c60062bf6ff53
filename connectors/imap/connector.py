"""IMAP connector (kind ``imap``): any IMAP mailbox, incrementally, read-only.

The connector is the face the agent sees; the work is in rooms of its own:

==============================  ==================================================
:mod:`connectors.imap.session`  the logged-in connection, its commands, its errors
:mod:`connectors.imap.folders`  the folder sync engine: what changed, in batches
:mod:`connectors.imap.cursor`   how far each folder's sync has come
:mod:`connectors.imap.message`  one FETCH response -> one ``MailMessage``
:mod:`connectors.imap.fetch`    the fast FETCH parser
:mod:`connectors.imap.wire`     the one place that reaches below imapclient's API
==============================  ==================================================

Beside fetching it can say what the server holds (``inventory``, ``lookup``,
``first_sync_size``), and, with ``idle`` set, wait on INBOX in IDLE for a
change (``wait_for_changes``) on a connection of its own, let go by ``close``.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from config.schema import DEFAULT_BATCH_BYTES
from connectors.batching import check_batch_bytes
from connectors.capabilities import ScopeSize
from connectors.errors import AuthError, ConnectorError
from connectors.imap.cursor import load_cursor
from connectors.imap.folders import FolderSync, Scope
from connectors.imap.session import FolderStatus, Security, Server, classify_error, disconnect
from connectors.records import Batch, Cursor, Item

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BATCH_SIZE = 500
DEFAULT_TEXT_BYTES = 16384
_CHANGE_RESPONSES = frozenset({b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED"})
_IDLE_SLICE = 25 * 60.0


class ImapConnector:
    """Changes of an IMAP mailbox since a cursor; see :mod:`connectors.imap.folders`.

    ``password`` is the plain secret (the config layer expands ``${ENV}``);
    ``oauth2_token_provider`` returns a fresh access token for XOAUTH2 and
    wins over the password. ``folders`` adds folders by name to INBOX and the
    ``\\Sent`` folder (``default_folders=False`` leaves only the named ones).
    A batch holds at most ``batch_size`` messages and ``batch_bytes`` of raw
    mail (or one larger message alone), counted from the sizes the server
    reports before fetching (:mod:`connectors.imap.folders`).
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
        batch_bytes: int = DEFAULT_BATCH_BYTES,
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
        self.batch_bytes = check_batch_bytes(batch_bytes)
        self.idle = idle
        self.timeout = timeout
        self._password = password
        self._token_provider = oauth2_token_provider
        self._ssl_context = ssl_context
        self._idle_client: IMAPClient | None = None
        self._inbox_seen: FolderStatus | None = None

    def __repr__(self) -> str:
        return f"ImapConnector({self.name!r}, {self.username}@{self.host}:{self.port})"

    # -- sync ------------------------------------------------------------------------------

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of new, changed and removed messages since ``cursor`` (None: everything)."""
        states = load_cursor(cursor)
        yield from self._over_a_session(lambda sync: sync.run(states))

    # -- what the server holds (connectors test, verify) -------------------------------------

    def inventory(self, cursor: Cursor | None = None) -> Iterator[str]:
        """``folder/uidvalidity/uid`` of every message in the synced folders (within ``since``).

        With ``cursor``, only what it covers: the folders it knows, under the
        same UIDVALIDITY, up to their ``last_uid``. One EXAMINE and one UID
        SEARCH per folder; no message is fetched.
        """
        states = load_cursor(cursor) if cursor is not None else None
        for _folder, source_ids in self._over_a_session(lambda sync: sync.held(states)):
            yield from source_ids

    def first_sync_size(self) -> list[ScopeSize]:
        """Messages per synced folder (within ``since``): what a first sync would read."""
        held = self._over_a_session(lambda sync: sync.held(None))
        return [ScopeSize(folder, len(source_ids), "messages") for folder, source_ids in held]

    def lookup(self, source_ids: Iterable[str]) -> Iterator[Item]:
        """The messages with these source ids, fetched as ``fetch`` does; ids whose
        folder or UIDVALIDITY is gone yield nothing."""
        wanted: dict[tuple[str, int], list[int]] = defaultdict(list)
        for source_id in source_ids:
            name, validity, uid = source_id.rsplit("/", 2)
            wanted[(name, int(validity))].append(int(uid))
        yield from self._over_a_session(lambda sync: sync.lookup(wanted))

    # -- sessions --------------------------------------------------------------------------

    def _server(self) -> Server:
        return Server(
            host=self.host,
            port=self.port,
            security=self.security,
            username=self.username,
            password=self._password,
            token_provider=self._token_provider,
            timeout=self.timeout,
            ssl_context=self._ssl_context,
        )

    def _scope(self) -> Scope:
        return Scope(
            name=self.name,
            address=self.address,
            folders=self.folders,
            default_folders=self.default_folders,
            since=self.since,
            batch_size=self.batch_size,
            text_bytes=self.text_bytes,
            batch_bytes=self.batch_bytes,
        )

    def _over_a_session(self, work: Callable[[FolderSync], Iterator[T]]) -> Iterator[T]:
        """``work`` on a new session, its failures as the connector errors the agent acts on."""
        try:
            with self._server().session() as session:
                yield from work(FolderSync(self._scope(), session, self._saw_inbox))
        except ConnectorError:
            raise
        except (IMAPClientError, OSError) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> ConnectorError:
        """The connector error for ``exc``; a refused OAuth login names the command that
        renews the grant, not the password the generic hint speaks of."""
        error = classify_error(exc)
        if isinstance(error, AuthError) and self._token_provider is not None:
            error.hint = f"run `crm-sync connectors auth {self.name}` to renew the OAuth grant"
        return error

    def _saw_inbox(self, status: FolderStatus | None) -> None:
        self._inbox_seen = status

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
            raise self._error(exc) from exc

    def _idle_wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if self._idle_client is None:
            client = self._server().connect()
            self._idle_client = client
            if b"IDLE" not in client.capabilities():
                self.close()
                self.idle = False
                log.info("%s: the server has no IDLE; polling instead", self.name)
                time.sleep(max(0.0, deadline - time.monotonic()))
                return False
            now = FolderStatus.of(client.select_folder("INBOX", readonly=True))
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
            disconnect(client)


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_change(response: object) -> bool:
    return isinstance(response, tuple) and any(
        isinstance(part, bytes) and part.upper() in _CHANGE_RESPONSES for part in response[:2]
    )
