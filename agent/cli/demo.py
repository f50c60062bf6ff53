"""``crm-sync demo``: the bundled sample company's mail and calendar, synced and reported.

Northwind Analytics (``northwind.example``) has three staff mailboxes and a
calendar in ``agent/cli/demo_data``, made by ``tests.support.mailgen``. The demo syncs
them into a fresh SQLite file, exactly as the agent would, and shows what
was logged and what was skipped, by reason.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import tomlkit
from rich.text import Text
from sqlalchemy import func, select

from agent.cli.demo_clock import moved_copy, weeks_to_now
from agent.cli.output import console, print_rows
from agent.cli.progress import print_summary, sync_progress
from agent.pipeline.policy import Policy
from agent.runtime.app import App
from agent.runtime.registry import build_connector, mailbox_of
from agent.runtime.sync_pass import SyncResult, sync_connector
from config import Settings, parse_settings
from config.secrets import ensure_key_file
from storage import audit
from storage import contacts as contact_queries
from storage.db import transaction
from storage.models import Interaction, Quarantine
from storage.users import add_user

DEMO_DOMAIN = "northwind.example"


def demo_data() -> Path:
    return Path(str(resources.files("agent.cli").joinpath("demo_data")))


def demo_settings(database: Path, data: Path) -> Settings:
    connectors: list[dict[str, Any]] = [
        {
            "name": f"{mbox.stem.split('@')[0]}-mail",
            "kind": "mbox",
            "account": mbox.stem,
            "path": str(mbox),
        }
        for mbox in sorted(data.glob("*.mbox"))
    ]
    calendar = data / "calendar.ics"
    if calendar.exists() and connectors:
        connectors.append(
            {
                "name": "team-calendar",
                "kind": "ics",
                "account": connectors[0]["account"],
                "path": str(calendar),
                "since": "2025-01-01",
            }
        )
    return parse_settings(
        {
            "database": {"url": f"sqlite:///{database}"},
            "agent": {"internal_domains": [DEMO_DOMAIN]},
            "secrets": {"key_file": str(database.with_suffix(".key"))},
            "connectors": connectors,
        },
        None,
    )


def run_demo(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    data = moved_copy(
        demo_data(), database.parent / "demo-data", weeks_to_now(demo_data(), date.today())
    )
    settings = demo_settings(database.resolve(), data.resolve())
    app = App.for_settings(settings)
    started = time.monotonic()
    app.upgrade()
    results: list[SyncResult] = []
    for config in settings.connectors:
        connector = build_connector(config, settings)
        policy = Policy.from_settings(settings, config.name, mailbox_of(config))
        with sync_progress(config.name, None) as progress:
            result = sync_connector(
                app.sessions, connector, policy, kind=config.kind, progress=progress
            )
        print_summary(result)
        results.append(result)
    elapsed = time.monotonic() - started
    sign_in = _demo_users(app, settings)
    _report(app, results, database, elapsed, _write_config(settings, database), sign_in)


def _demo_users(app: App, settings: Settings) -> tuple[str, str]:
    """Each sample mailbox's owner may sign in to the web app, the first as admin, with one
    new random password: a demo left running must not open to a password printed in docs."""
    ensure_key_file(settings.secrets.key_file)
    password = secrets.token_urlsafe(12)
    owners = sorted({mailbox_of(c) for c in settings.connectors})
    with transaction(app.sessions) as session:
        for n, owner in enumerate(owners):
            add_user(
                session,
                owner,
                role="admin" if n == 0 else "member",
                display_name=owner.split("@")[0].replace(".", " ").title(),
                password=password,
                actor=audit.user("demo"),
            )
    return owners[0], password


def _write_config(settings: Settings, database: Path) -> Path:
    """A config beside the demo database, so that every other command can look at it.

    Commands need a config file (none is an error, not a silent default); the
    demo's settings live in code, so they are written out here.
    """
    path = database.with_suffix(".toml")
    document = tomlkit.document()
    document.add(tomlkit.comment("Written by `crm-sync demo`: the sample company's settings."))
    document["database"] = {"url": settings.database.url}
    document["agent"] = {"internal_domains": list(settings.agent.internal_domains)}
    document["secrets"] = {"key_file": str(settings.secrets.key_file)}
    tables = tomlkit.aot()
    for connector in settings.connectors:
        values = connector.model_dump(mode="json", exclude_defaults=True)
        values.update({"name": connector.name, "kind": connector.kind})
        tables.append(tomlkit.item(values))
    document["connectors"] = tables
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    return path


def _report(
    app: App,
    results: list[SyncResult],
    database: Path,
    elapsed: float,
    config: Path,
    sign_in: tuple[str, str],
) -> None:
    with app.sessions() as session:
        contacts = contact_queries.list_contacts(session)
        companies = contact_queries.list_companies(session)
        kinds: dict[str, int] = {
            kind: count
            for kind, count in session.execute(
                select(Interaction.kind, func.count()).group_by(Interaction.kind)
            )
        }
        quarantined = session.execute(select(Quarantine.source_id, Quarantine.reason)).all()
    console.rule(Text("what was logged", style="bold"))
    console.print(
        f"{len(contacts)} contacts at {len(companies)} companies; "
        f"{kinds.get('email', 0)} emails and {kinds.get('meeting', 0)} meetings logged "
        f"in {elapsed:.1f}s into {database}"
    )
    print_rows(
        [c.__dict__ for c in companies],
        ["name", "domains", "contacts"],
        as_json=False,
        title="companies",
    )
    print_rows(
        [
            {
                "name": c.name,
                "email": c.emails[0] if c.emails else "",
                "company": c.company,
                "interactions": c.interactions,
                "last_contact": c.last_contacted_at.date() if c.last_contacted_at else None,
                "about": c.last_subject,
            }
            for c in contacts
        ],
        ["name", "email", "company", "interactions", "last_contact", "about"],
        as_json=False,
        title="contacts, most recent first",
    )
    skipped: Counter[str] = Counter()
    for result in results:
        skipped.update(result.skipped)
    print_rows(
        [{"reason": r, "messages": n} for r, n in skipped.most_common()],
        ["reason", "messages"],
        as_json=False,
        title="skipped, by reason (nothing is dropped without one)",
    )
    if quarantined:
        print_rows(
            [{"source": s, "reason": r} for s, r in quarantined],
            ["source", "reason"],
            as_json=False,
            title="quarantined (could not be parsed; the sync went on)",
        )
    if contacts and contacts[0].emails:
        console.print(
            f"next: crm-sync --config {config} contacts show {contacts[0].emails[0]}",
            highlight=False,
        )
    console.print(
        f"      crm-sync --config {config} report cooling (or activity, coverage, sources)",
        highlight=False,
        soft_wrap=True,
    )
    web = app.settings.web
    console.print(
        f"web:  crm-sync --config {config} serve, then open http://{web.host}:{web.port} and "
        f"sign in as {sign_in[0]} with the password {sign_in[1]}",
        highlight=False,
        soft_wrap=True,
    )
