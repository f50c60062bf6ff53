"""``connectors``: the admin's work on the mailboxes and calendars the agent syncs.

Commands that change the config file edit it through ``config.edit``,
so the admin's comments survive and a change the agent would refuse is never
written. Commands that change a connector's state write its ``sync_state``
row, which every agent process sharing the database reads: ``paused`` and
``needs_auth`` connectors are not scheduled until ``resume`` or ``auth`` set
them back to ``ok``.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy import delete, func, select

from agent.cli.common import EXIT_FAILURE, EXIT_USAGE, pass_app
from agent.cli.output import console, errors, print_rows
from agent.cli.wording import counted
from agent.runtime.app import App
from agent.runtime.health import connector_status
from agent.runtime.registry import IMAP_GOOGLE_SCOPE, NotAvailable, build_connector, token_store
from config import ConfigError
from config import edit as config_edit
from config.loader import find_config
from config.schema import CONNECTOR_KINDS, ConnectorConfig
from config.schema import GmailConnector as GmailConfig
from config.schema import GoogleCalendarConnector as CalendarConfig
from config.schema import ImapConnector as ImapConfig
from config.schema import MicrosoftCalendarConnector as OutlookCalendarConfig
from config.schema import MicrosoftMailConnector as OutlookMailConfig
from config.secrets import KEY_ENV, SecretStoreError, ensure_key_file
from connectors.capabilities import ScopeSize, Sized
from connectors.errors import AuthError, ConnectorError
from connectors.google.auth import CALENDAR_READONLY_SCOPE, gmail_scopes, run_oauth_flow
from connectors.microsoft.auth import (
    CALENDAR_SCOPES,
    IMAP_SCOPES,
    MAIL_SCOPES,
    Tenant,
    device_code_grant,
)
from connectors.records import Connector
from storage.db import transaction
from storage.models import InteractionSource, Quarantine, SyncState
from storage.sync_state import ConnectorStatus, get_state, set_status, status_of

_ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
RESUMABLE = frozenset(
    {
        ConnectorStatus.PAUSED,
        ConnectorStatus.NEEDS_AUTH,
        ConnectorStatus.FAILING,
        ConnectorStatus.STUCK,
    }
)


@click.group()
def connectors() -> None:
    """Add, check, authorise, pause and remove the mailboxes and calendars to sync."""


# ------------------------------------------------------------------------------------ list


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def connectors_list(app: App, as_json: bool) -> None:
    """Every configured connector with its settings (no secrets) and its state."""
    app.require_schema()
    with app.sessions() as session:
        health = {
            row["connector"]: row
            for row in connector_status(app.settings, session, now=datetime.now(timezone.utc))
        }
    rows = [
        {
            "name": config.name,
            "kind": config.kind,
            "account": config.account,
            "state": health[config.name]["state"],
            "interval": app.settings.interval_of(config),
            "last_success": health[config.name]["last_success"],
            "items": health[config.name]["items"],
            "last_error": health[config.name]["last_error"],
            "settings": config.model_dump(mode="json", exclude={"password"}),
        }
        for config in app.settings.connectors
    ]
    print_rows(
        rows,
        ["name", "kind", "account", "state", "interval", "last_success", "items"],
        as_json=as_json,
        empty="no connectors configured: add one with `crm-sync connectors add KIND --name NAME`",
    )


# ------------------------------------------------------------------------------------- add


@connectors.command("add")
@click.argument("kind", type=click.Choice(CONNECTOR_KINDS))
@click.option("--name", required=True, help="The connector's name: letters, digits, . _ -")
@click.option("--account", metavar="ADDRESS", help="Whose mailbox or calendar this is.")
@click.option("--path", type=click.Path(path_type=Path), help="mbox/ics: the file or folder.")
@click.option("--host", help="imap: the server.")
@click.option("--port", type=int, help="imap: the port (default 993, or 143 with starttls).")
@click.option("--security", type=click.Choice(["tls", "starttls", "plain"]), help="imap.")
@click.option("--username", help="imap: the login, when it is not the address.")
@click.option(
    "--password-env",
    metavar="VAR",
    help="imap: the environment variable holding the password (written as ${VAR}).",
)
@click.option("--folder", "folders", multiple=True, help="imap: a folder beside INBOX and Sent.")
@click.option("--auth", type=click.Choice(["oauth", "service_account"]), help="gmail/calendar.")
@click.option("--key-file", type=click.Path(path_type=Path), help="A service account's JSON key.")
@click.option(
    "--client-secrets", type=click.Path(path_type=Path), help="An OAuth client's JSON file."
)
@click.option("--scope", type=click.Choice(["metadata", "readonly"]), help="gmail.")
@click.option("--label", "labels", multiple=True, help="gmail: a label id to sync.")
@click.option("--calendar", "calendars", multiple=True, help="google_calendar: a calendar id.")
@click.option("--since", metavar="DATE|AGE", help="Backfill from then on: 2024-01-01 or 90d.")
@click.option("--interval", metavar="DURATION", help="Override agent.interval: 90s, 5m, 1h.")
@click.option("--api-endpoint", metavar="URL", help="gmail/calendar: another API root.")
@click.option(
    "--set",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help='Any other key of the table; VALUE is TOML (true, 10, ["a"]) or plain text.',
)
@pass_app
def connectors_add(
    app: App, /, kind: str, name: str, extra: tuple[str, ...], **options: Any
) -> None:
    """Add a KIND connector to the config file, keeping its comments.

    The file is checked as the agent would check it before anything is
    written; a duplicate name or an option the kind does not take is refused
    with the reason. Passwords are never written into the file: give the
    variable that holds one with --password-env. Relative paths are made
    absolute. Example:

        crm-sync connectors add imap --name bob-imap --account bob@example.com
        --host imap.example.com --password-env BOB_IMAP_PASSWORD
    """
    path = _config_file(app)
    values = _table(kind, name, options)
    try:
        values.update(_parse_assignments(extra))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    _refuse_secret(values)
    document = config_edit.read(path)
    if name in config_edit.connector_names(document):
        _refuse(f"a connector named {name!r} exists in {path}")
    config_edit.add_connector(document, values)
    _write(path, document)
    console.print(f"added connector {name} ({kind}) to {path}")
    oauth = (kind in ("gmail", "google_calendar") and values.get("auth", "oauth") == "oauth") or (
        values.get("auth") in ("delegated",) or (kind == "imap" and values.get("auth") == "oauth")
    )
    following = "auth" if oauth else "test"
    console.print(f"next: crm-sync connectors {following} {name}")


def _table(kind: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The new table's keys, in a readable order; only what the admin gave."""
    values: dict[str, Any] = {"name": name, "kind": kind}
    for key in (
        "account", "path", "host", "port", "security", "username", "auth", "key_file",
        "client_secrets", "scope", "since", "interval", "api_endpoint",
    ):  # fmt: skip
        value = options.get(key)
        if value is not None:
            values[key] = _absolute(value) if isinstance(value, Path) else value
    if options.get("password_env"):
        values["password"] = "${" + options["password_env"] + "}"
    for key in ("folders", "labels", "calendars"):
        if options.get(key):
            values[key] = list(options[key])
    return values


def _parse_assignments(assignments: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {assignment!r}")
        try:
            values[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            values[key.strip()] = text
    return values


def _refuse_secret(values: dict[str, Any]) -> None:
    for key in ("password", "client_secret"):
        secret = values.get(key)
        if secret is not None and not (isinstance(secret, str) and _ENV_REF.match(secret)):
            _refuse(
                f"a {key.replace('_', ' ')} is never written into the config file: put it in "
                f"an environment variable and give --set {key}='${{VAR}}'"
                if key == "client_secret"
                else "a password is never written into the config file: put it in an "
                "environment variable and give --password-env VAR"
            )


# ------------------------------------------------------------------------------------ test


@connectors.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def connectors_test(app: App, name: str, as_json: bool) -> None:
    """Connect as NAME would, check its credentials and scope, count what a first sync reads.

    Writes nothing: not the database, not the token store. Exits with
    status 1 and the error when the connector cannot work.
    """
    config = _configured(app, name)
    try:
        connector = build_connector(config, app.settings, app.base_dir)
        rows = [asdict(size) for size in _first_sync_size(connector)]
    except (NotAvailable, ConnectorError, OSError, ValueError) as exc:
        hint = exc.hint if isinstance(exc, AuthError) else ""
        errors.print(f"{name}: failed: {exc} {hint}".strip(), highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
    print_rows(
        rows,
        ["scope", "count", "unit"],
        as_json=as_json,
        title=f"{name}: connected; a first sync would read",
    )


def _first_sync_size(connector: Connector) -> list[ScopeSize]:
    """Per file, folder or label, what a first sync would read: a connector that
    cannot say (:class:`~connectors.capabilities.Sized`) cannot be tested."""
    if not isinstance(connector, Sized):
        raise NotAvailable(f"connector {connector.name!r} cannot be tested yet")
    return connector.first_sync_size()


# ------------------------------------------------------------------------------------ auth


@connectors.command("auth")
@click.argument("name")
@click.option(
    "--no-browser",
    is_flag=True,
    help="Print the consent URL instead of opening a browser (on a server: open it "
    "elsewhere, with an SSH tunnel to --port).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Loopback port to listen on."
)
@click.option(
    "--timeout", type=click.IntRange(min=1), default=600, show_default=True, help="Seconds."
)
@pass_app
def connectors_auth(app: App, name: str, no_browser: bool, port: int, timeout: int) -> None:
    """Grant NAME read access to a mailbox or calendar, and store the grant encrypted.

    Google (gmail, google_calendar, imap with provider google): OAuth consent in
    a browser, for the connector's one read scope. Microsoft (microsoft_mail,
    microsoft_calendar with auth = "delegated", imap with provider microsoft):
    the device code flow; sign in on any device with the code printed here.
    Makes the key file if there is none, and sets a connector parked as
    needs_auth back to ok.
    """
    from google_auth_oauthlib.flow import WSGITimeoutError
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error  # type: ignore[import-untyped]

    config = _configured(app, name)
    grant = _grant_for(config)
    app.require_schema()
    base = app.base_dir
    try:
        if not os.environ.get(KEY_ENV):
            ensure_key_file(base / app.settings.secrets.key_file)
        store = token_store(app.settings, base)
        record = grant(base, no_browser=no_browser, port=port, timeout=timeout)
        store.save(name, record)
    except AuthError as exc:
        errors.print(f"error: {exc} {exc.hint}".strip(), highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
    except ConnectorError as exc:
        _refuse(str(exc))
    except WSGITimeoutError:
        errors.print(f"error: no answer from the browser within {timeout}s; run it again")
        sys.exit(EXIT_FAILURE)
    except (OAuth2Error, SecretStoreError, OSError) as exc:
        errors.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
    console.print(f"{name}: access granted; the token is stored encrypted")
    before, after = _set_status(app, name, config.kind, _after_auth)
    if after == ConnectorStatus.PAUSED:
        console.print(f"{name} is still paused: `crm-sync connectors resume {name}` resumes it")
    elif before != after:
        console.print(f"{name}: {before} -> {after}")


Grant = Callable[..., dict[str, Any]]


def _grant_for(config: ConnectorConfig) -> Grant:
    """How NAME's grant is obtained, or a refusal that says why there is none to get."""
    name = config.name
    if isinstance(config, OutlookMailConfig | OutlookCalendarConfig):
        if config.auth == "app":
            _refuse(
                f'{name} uses the app\'s own permission (auth = "app"): there is nothing to '
                "authorise here; an admin grants it in the Entra admin center "
                "(App registrations, API permissions, Grant admin consent)"
            )
        scopes = (
            MAIL_SCOPES[config.scope] if isinstance(config, OutlookMailConfig) else CALENDAR_SCOPES
        )
        return _device_code(Tenant(config.tenant, config.client_id, config.authority_host), scopes)
    if isinstance(config, ImapConfig):
        if config.auth != "oauth":
            _refuse(f'{name} logs in with a password: set auth = "oauth" to use a grant')
        if config.provider == "microsoft":
            assert config.tenant is not None and config.client_id is not None
            tenant = Tenant(config.tenant, config.client_id, config.authority_host)
            return _device_code(tenant, IMAP_SCOPES)
        return _google_consent(name, config.client_secrets, [IMAP_GOOGLE_SCOPE])
    if not isinstance(config, GmailConfig | CalendarConfig):
        _refuse(f"{name} is an {config.kind} connector: it reads files and needs no grant")
    if config.auth != "oauth":
        _refuse(
            f"{name} uses a service account (key_file): there is nothing to authorise here; "
            "grant its client id the scope in the Google Admin console (domain-wide delegation)"
        )
    google_scopes = (
        gmail_scopes(config.scope) if isinstance(config, GmailConfig) else [CALENDAR_READONLY_SCOPE]
    )
    return _google_consent(name, config.client_secrets, google_scopes)


def _google_consent(name: str, client_secrets: Path | None, scopes: list[str]) -> Grant:
    if client_secrets is None:
        _refuse(
            f"{name} sets no client_secrets: download the OAuth client (Desktop app) JSON from "
            "the Google Cloud console and set client_secrets to its path"
        )

    def grant(base: Path, *, no_browser: bool, port: int, timeout: int) -> dict[str, Any]:
        return run_oauth_flow(
            base / client_secrets,
            scopes,
            open_browser=not no_browser,
            port=port,
            timeout_seconds=timeout,
        )

    return grant


def _device_code(tenant: Tenant, scopes: Sequence[str]) -> Grant:
    def grant(_base: Path, *, timeout: int, **_options: object) -> dict[str, Any]:
        def say(text: str) -> None:
            console.print(text, highlight=False, markup=False)

        return device_code_grant(tenant, scopes, say=say, timeout=timeout)

    return grant


def _after_auth(status: ConnectorStatus) -> ConnectorStatus:
    if status in (ConnectorStatus.NEEDS_AUTH, ConnectorStatus.FAILING):
        return ConnectorStatus.OK
    return status


# --------------------------------------------------------------------------- pause / resume


@connectors.command("pause")
@click.argument("name")
@pass_app
def connectors_pause(app: App, name: str) -> None:
    """Stop scheduling NAME (in every agent sharing the database) until `resume`."""
    config = _configured(app, name)
    app.require_schema()
    before, after = _set_status(app, name, config.kind, lambda _: ConnectorStatus.PAUSED)
    console.print(f"{name}: {before} -> {after}")


@connectors.command("resume")
@click.argument("name")
@pass_app
def connectors_resume(app: App, name: str) -> None:
    """Schedule NAME again: after `pause`, or after a failure you have fixed."""
    config = _configured(app, name)
    app.require_schema()
    before, after = _set_status(
        app,
        name,
        config.kind,
        lambda status: ConnectorStatus.OK if status in RESUMABLE else status,
    )
    console.print(f"{name}: {before} -> {after}" if before != after else f"{name}: {after}")


def _set_status(
    app: App, name: str, kind: str, change: Callable[[ConnectorStatus], ConnectorStatus]
) -> tuple[ConnectorStatus, ConnectorStatus]:
    """Apply ``change`` to the connector's status; a move to ok clears the last error."""
    with transaction(app.sessions) as session:
        state = get_state(session, name, kind)
        before = status_of(state)
        after = change(before)
        set_status(state, after)
        if after == ConnectorStatus.OK and before != ConnectorStatus.OK:
            state.last_error = None
        return before, after


# ------------------------------------------------------------------------------------ remove


@connectors.command("remove")
@click.argument("name")
@click.option(
    "--keep-data",
    is_flag=True,
    help="Keep its cursor, sources and quarantine rows (adding it back resumes where it was).",
)
@click.option("--yes", is_flag=True, help="Remove without asking (needed without a terminal).")
@pass_app
def connectors_remove(app: App, name: str, keep_data: bool, yes: bool) -> None:
    """Remove NAME's table from the config file, keeping the file's comments.

    Its sync state (cursor, counters), quarantine rows, source rows and stored
    token go too, unless --keep-data. The interactions it logged stay.

    Asks first on a terminal; --yes skips the question. Without a terminal
    (a script, cron) it refuses unless given --yes, with exit status 2.
    Answering no changes nothing, with exit status 1.
    """
    path = _config_file(app)
    document = config_edit.read(path)
    if name not in config_edit.connector_names(document):
        _refuse(f"no connector named {name!r} in {path}")
    if not keep_data:
        app.require_schema()
    if not yes:
        _confirm_removal(app, path, name, keep_data=keep_data)
    config_edit.remove_connector(document, name)
    _write(path, document)
    console.print(f"removed connector {name} from {path}")
    if keep_data:
        return
    with transaction(app.sessions) as session:
        sources = session.execute(
            delete(InteractionSource)
            .where(InteractionSource.connector == name)
            .returning(InteractionSource.id)
        ).all()
        quarantined = session.execute(
            delete(Quarantine).where(Quarantine.connector == name).returning(Quarantine.id)
        ).all()
        session.execute(delete(SyncState).where(SyncState.connector == name))
    token = _delete_token(app, name)
    console.print(
        f"  forgot its sync state, {len(sources)} source rows and {len(quarantined)} "
        "quarantined items"
        + (", and its stored token" if token else "")
        + "; the interactions it logged stay"
    )


def _confirm_removal(app: App, path: Path, name: str, *, keep_data: bool) -> None:
    """Ask on a terminal; without one, refuse: a script removes only by saying --yes."""
    if not sys.stdin.isatty():
        _refuse(
            f"removing {name} drops its table from {path}"
            + ("" if keep_data else " and forgets its sync state")
            + "; without a terminal to confirm on, add --yes"
        )
    if keep_data:
        what = "its sync state, source rows and quarantined items are kept"
    else:
        with app.sessions() as session:
            sources = session.scalar(
                select(func.count()).where(InteractionSource.connector == name)
            )
            quarantined = session.scalar(select(func.count()).where(Quarantine.connector == name))
        what = (
            f"its sync state, {counted(sources or 0, 'source row')} and "
            f"{counted(quarantined or 0, 'quarantined item')} are forgotten, with its stored "
            "token; the interactions it logged stay"
        )
    if not click.confirm(f"Remove connector {name} from {path}? ({what})", default=False):
        errors.print(f"{name} not removed: nothing changed")
        sys.exit(EXIT_FAILURE)


def _delete_token(app: App, name: str) -> bool:
    """Forget the stored grant; without the key (nothing could read it) by path."""
    try:
        return token_store(app.settings, app.base_dir).delete(name)
    except AuthError:
        path = app.base_dir / app.settings.secrets.token_dir / f"{name}.token"
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed


# ---------------------------------------------------------------------------------- helpers


def _configured(app: App, name: str) -> ConnectorConfig:
    try:
        return app.settings.connector(name)
    except KeyError:
        _refuse(f"no connector named {name!r} in the config")


def _config_file(app: App) -> Path:
    path = find_config(app.config_path)
    if path is None:
        _refuse("no config file: run `crm-sync init` first, or give --config PATH")
    return path


def _write(path: Path, document: Any) -> None:
    try:
        config_edit.write(path, document)
    except ConfigError as exc:
        errors.print(f"refused: {path} would not be a valid config:", highlight=False)
        for problem in exc.problems:
            errors.print(f"  {problem}", highlight=False, markup=False)
        sys.exit(EXIT_USAGE)


def _refuse(reason: str) -> NoReturn:
    errors.print(f"refused: {reason}", highlight=False, markup=False)
    sys.exit(EXIT_USAGE)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser()))


# add-team lives in its own module; importing it adds the command to the group.
from agent.cli import connectors_team  # noqa: E402, F401
