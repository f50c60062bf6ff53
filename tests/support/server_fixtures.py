"""The servers at the edges as pytest fixtures: the fake Google API, the fake Microsoft
Graph and a private Dovecot.

Registered for every test by ``tests/conftest.py`` (``pytest_plugins``), so a
test asks for ``fake_google``, ``graph`` (:mod:`tests.support.graph_connectors`),
``dovecot`` or ``imap_user`` by name and no module starts a server of its own.

``fake_google`` is a fresh server per test: its state (mailboxes, tokens,
the request log) is what the test made it. Dovecot is slower to start, so
``dovecot`` is one server per test module, and ``imap_user`` gives each test a
mailbox no other test on that server has touched. ``dovecot_servers`` starts
the variants a few IMAP tests need (fewer capabilities, TLS) with the same
users. Where Dovecot cannot be found or started the test skips saying how to
install it, or fails under ``CI=true`` (:func:`tests.support.servers.need_server`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

import pytest

from tests.support.dovecot import DovecotServer, DovecotUnavailable, ImapUser, running_dovecot
from tests.support.fake_google.server import FakeGoogle
from tests.support.graph_connectors import graph

__all__ = ["dovecot", "dovecot_servers", "fake_google", "graph", "imap_user"]
from tests.support.servers import need_server

IMAP_USERS = tuple(ImapUser(f"user{n}@example.com", f"secret-{n}") for n in range(200))
"""Every Dovecot these fixtures start knows these users; ``imap_user`` hands them out."""


class DovecotServers(Protocol):
    def __call__(self, capabilities: str | None = None, *, tls: bool = False) -> DovecotServer:
        """The module's server advertising ``capabilities`` (None: Dovecot's own list)."""
        ...


@pytest.fixture
def fake_google() -> Iterator[FakeGoogle]:
    """A started fake Google server of this test's own."""
    with FakeGoogle() as server:
        yield server


@pytest.fixture(scope="module")
def dovecot_servers() -> Iterator[DovecotServers]:
    """Dovecot servers by advertised capabilities and TLS, each started on first use and
    stopped when the module's tests are done."""
    started: dict[tuple[str | None, bool], DovecotServer] = {}
    with contextlib.ExitStack() as stack:

        def get(capabilities: str | None = None, *, tls: bool = False) -> DovecotServer:
            key = (capabilities, tls)
            if key not in started:
                try:
                    server = running_dovecot(IMAP_USERS, capabilities, tls=tls)
                    started[key] = stack.enter_context(server)
                except DovecotUnavailable as exc:
                    need_server(str(exc))
            return started[key]

        yield get


@pytest.fixture(scope="module")
def dovecot(dovecot_servers: DovecotServers) -> DovecotServer:
    """The module's Dovecot with its default capabilities, plain IMAP on loopback."""
    return dovecot_servers()


@pytest.fixture(scope="module")
def _unused_imap_users() -> Iterator[ImapUser]:
    return iter(IMAP_USERS)


@pytest.fixture
def imap_user(_unused_imap_users: Iterator[ImapUser]) -> ImapUser:
    """A mailbox on the module's Dovecot servers that no earlier test used."""
    user = next(_unused_imap_users, None)
    if user is None:
        pytest.fail(f"a test module used all {len(IMAP_USERS)} IMAP users; add more")
    return user
