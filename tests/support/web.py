"""A team's database and the real web app serving it, for the web tests.

:func:`seed_team` writes a small, known team straight into the contract
tables (``storage.models``): three users, each owning a mailbox read by a
connector, a customer company, shared and private threads, and one contact
whose every text field is hostile markup. :class:`WebServer` runs
``crm-sync serve`` in a subprocess on a loopback port against it, as an
admin would, and stops it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.db import make_engine, upgrade
from storage.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    SyncState,
)
from storage.users import add_user
from tests.support.servers import temporary_pg_database

PASSWORD = "correct horse battery"
HOSTILE = (
    "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
    "<a href=javascript:window.__pwned=3>click</a><svg onload=window.__pwned=4></svg>"
    "<style>body{display:none}</style><link rel=stylesheet href=http://evil.example/x.css>"
    "\u202eevil\u202c <iframe src=http://evil.example/></iframe>"
)
"""A subject, name and snippet that would run script, load from another host or reorder
text if any page rendered it as anything but text."""
SESSION_SECRET = "test-session-secret-0123456789abcdef-0123456789"


@dataclass(frozen=True)
class Team:
    admin: str
    member: str
    other: str
    password: str
    company_id: int
    dana_id: int
    hostile_id: int
    shared_subject: str
    private_subject: str


def _at(days_ago: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days_ago)


def seed_team(engine: Engine) -> Team:
    """Ann (admin), Bob and Cat (members); Dana at Acme writes to Bob (shared) and to Cat
    (a private thread only Cat may read); a hostile contact mails Bob."""
    upgrade(engine)
    with Session(engine) as session, session.begin():
        for name, role in (("ann", "admin"), ("bob", "member"), ("cat", "member")):
            add_user(
                session,
                f"{name}@ourteam.example",
                role=role,
                display_name=name.title(),
                password=PASSWORD,
                actor="user:test",
            )
            session.add(
                SyncState(
                    connector=f"{name}-mail",
                    kind="mbox",
                    account=f"{name}@ourteam.example",
                    status="ok",
                    last_success_at=_at(0.001),
                    counters={},
                )
            )
        acme = Company(name="Acme Widgets")
        session.add(acme)
        session.flush()
        session.add(CompanyDomain(company_id=acme.id, domain="acme.example"))
        dana = _contact(session, "Dana Whitfield", "dana@acme.example", acme.id, title="CFO")
        hostile = _contact(session, HOSTILE, "mallory@evil.example", None)
        shared = "Renewal terms for next year"
        private = "Private thread: Cat and Dana"
        _mail(session, "bob", dana, shared, "Can we talk about the renewal?", days=2, n=1)
        _mail(
            session, "bob", dana, "Re: " + shared, "Yes, Tuesday works.", days=1, n=2, outbound=True
        )
        _mail(
            session,
            "cat",
            dana,
            private,
            "Personal matter, not for the team.",
            days=3,
            n=3,
            private=True,
        )
        _mail(session, "bob", hostile, HOSTILE, HOSTILE, days=4, n=4)
        session.flush()
        team = Team(
            admin="ann@ourteam.example",
            member="bob@ourteam.example",
            other="cat@ourteam.example",
            password=PASSWORD,
            company_id=acme.id,
            dana_id=dana.id,
            hostile_id=hostile.id,
            shared_subject=shared,
            private_subject=private,
        )
    return team


def _contact(
    session: Session, name: str, email: str, company_id: int | None, title: str | None = None
) -> Contact:
    contact = Contact(display_name=name, company_id=company_id, title=title)
    session.add(contact)
    session.flush()
    session.add(ContactEmail(contact_id=contact.id, email=email))
    return contact


def _mail(
    session: Session,
    owner: str,
    contact: Contact,
    subject: str,
    snippet: str,
    *,
    days: float,
    n: int,
    outbound: bool = False,
    private: bool = False,
) -> None:
    mine = f"{owner}@ourteam.example"
    theirs = session.query(ContactEmail).filter_by(contact_id=contact.id).one().email
    interaction = Interaction(
        kind="email",
        dedupe_key=f"<m{n}@test>",
        occurred_at=_at(days),
        subject=subject,
        summary=snippet,
        direction="outbound" if outbound else "inbound",
        thread=f"thread-{owner}-{contact.id}",
        visibility="private" if private else "shared",
        owner=mine,
    )
    session.add(interaction)
    session.flush()
    sender, recipient = (mine, theirs) if outbound else (theirs, mine)
    session.add_all(
        [
            InteractionParticipant(
                interaction_id=interaction.id,
                email=sender,
                role="from",
                contact_id=None if outbound else contact.id,
                name=None if outbound else contact.display_name,
            ),
            InteractionParticipant(
                interaction_id=interaction.id,
                email=recipient,
                role="to",
                contact_id=contact.id if outbound else None,
            ),
            InteractionSource(
                interaction_id=interaction.id, connector=f"{owner}-mail", source_id=str(n)
            ),
        ]
    )
    contact.last_contacted_at = max(
        contact.last_contacted_at or interaction.occurred_at, interaction.occurred_at
    )


@contextmanager
def web_database(kind: str, folder: Path) -> Iterator[str]:
    """A new, empty database of ``kind`` (``sqlite`` or ``postgresql``), dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'web.db'}"
        return
    with temporary_pg_database("crm_sync_web") as url:
        yield url


@contextmanager
def seeded_database(kind: str, folder: Path) -> Iterator[tuple[str, Team]]:
    """A new database of ``kind`` holding :func:`seed_team`'s team: its URL and the team."""
    with web_database(kind, folder) as url:
        engine = make_engine(url)
        try:
            team = seed_team(engine)
        finally:
            engine.dispose()
        yield url, team


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def team_connectors(folder: Path) -> str:
    """The config tables of the seeded team's mailboxes (empty mbox files), so that the
    admin pages show them as configured."""
    tables = []
    for name in ("ann", "bob", "cat"):
        mbox = folder / f"{name}.mbox"
        mbox.touch()
        tables.append(
            f'[[connectors]]\nname = "{name}-mail"\nkind = "mbox"\n'
            f'account = "{name}@ourteam.example"\npath = "{mbox}"\n'
        )
    return "\n".join(tables)


class WebServer:
    """``crm-sync serve`` in a subprocess; ``url`` once it answers ``/healthz``."""

    def __init__(self, folder: Path, database_url: str, web: str = "", body: str = "") -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "crm-sync.toml"
        secret = 'session_secret = "${WEB_SECRET}"'
        self.config.write_text(
            f'[database]\nurl = "{database_url}"\n\n[web]\n{secret}\n{web}\n\n{body}'
        )
        self.log = folder / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> WebServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_SYNC_")}
        env["WEB_SECRET"] = SESSION_SECRET
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent",
                    "--config",
                    str(self.config),
                    "serve",
                    "--port",
                    str(self.port),
                ],
                cwd=self.folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"serve exited {self.process.returncode}: {self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"serve did not answer in {timeout} s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in as a browser does: fetch the form for its CSRF token, post it back."""
    form = client.get("/login")
    token = csrf_of(form.text)
    return client.post(
        "/login", data={"email": email, "password": password, "csrf": token, "next": "/search"}
    )


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
