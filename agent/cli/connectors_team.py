"""``connectors add-team``: a mail and a calendar connector for each user of a team, from
a Google Workspace domain (service account) or a Microsoft 365 tenant (the app's own
permissions, users listed from the directory)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click

from agent.cli.common import pass_app
from agent.cli.connectors import _absolute, _config_file, _refuse, _write, connectors
from agent.cli.output import print_rows
from agent.runtime.app import App
from config import edit as config_edit
from connectors.errors import AuthError, ConnectorError
from connectors.microsoft.auth import Tenant

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@connectors.command("add-team")
@click.option("--domain", help="Google Workspace: the domain, example.com")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Google Workspace: the service account's JSON key (domain-wide delegation).",
)
@click.option("--tenant", help="Microsoft 365: the tenant id or domain (contoso.onmicrosoft.com).")
@click.option("--client-id", help="Microsoft 365: the app registration's client id.")
@click.option(
    "--client-secret-env",
    metavar="VAR",
    help="Microsoft 365: the environment variable holding the app's client secret "
    "(written into the config as ${VAR}, never as the secret).",
)
@click.option(
    "--users",
    "users",
    multiple=True,
    help="alice,bob,... (or addresses). Google: required. Microsoft: default every "
    "enabled member with a mailbox, listed from the directory.",
)
@click.option("--opt-out", "opt_outs", multiple=True, help="Users left out: carol,dave")
@click.option("--scope", type=click.Choice(["metadata", "readonly"]), default="metadata")
@click.option("--since", metavar="DATE|AGE", help="Backfill from then on: 2024-01-01 or 90d.")
@click.option("--authority-host", hidden=True, default="https://login.microsoftonline.com")
@click.option("--graph-endpoint", hidden=True, default="https://graph.microsoft.com/v1.0")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def connectors_add_team(
    app: App,
    domain: str | None,
    key_file: Path | None,
    tenant: str | None,
    client_id: str | None,
    client_secret_env: str | None,
    users: tuple[str, ...],
    opt_outs: tuple[str, ...],
    scope: str,
    since: str | None,
    authority_host: str,
    graph_endpoint: str,
    as_json: bool,
) -> None:
    """Add a mail and a calendar connector for each user of a team.

    Google Workspace (--domain, --key-file, --users): one service-account key
    serves them all, each impersonating its user. Microsoft 365 (--tenant,
    --client-id, --client-secret-env): the app's own permissions over the
    tenant (an admin consents once: Mail.ReadBasic.All or Mail.Read,
    Calendars.Read, and User.Read.All to list the users). Users who opted
    out and connector names that exist are skipped, so running it again adds
    only the new ones.
    """
    if (domain is None) == (tenant is None):
        _refuse("give either --domain (Google Workspace) or --tenant (Microsoft 365)")
    common: dict[str, Any] = {"since": since} if since else {}
    if domain is not None:
        if key_file is None or not users:
            _refuse("a Google Workspace team needs --key-file and --users")
        _check_service_account_key(key_file)
        team = domain
        accounts = [_address(u, domain) for u in _split(users)]
        out = {_address(u, domain) for u in _split(opt_outs)}
        kinds = {"gmail": "gmail", "google_calendar": "calendar"}
        common |= {"auth": "service_account", "key_file": str(_absolute(key_file))}
    else:
        assert tenant is not None
        if not client_id or not client_secret_env:
            _refuse("a Microsoft 365 tenant needs --client-id and --client-secret-env")
        team = tenant
        common |= {
            "tenant": tenant,
            "client_id": client_id,
            "auth": "app",
            "client_secret": f"${{{client_secret_env}}}",
        }
        if authority_host != "https://login.microsoftonline.com":
            common["authority_host"] = authority_host
        if graph_endpoint != "https://graph.microsoft.com/v1.0":
            common["graph_endpoint"] = graph_endpoint
        listed = _tenant_users(tenant, client_id, client_secret_env, authority_host, graph_endpoint)
        accounts = listed if not users else [_user_in(u, listed) for u in _split(users)]
        out = {_user_in(u, listed, strict=False) for u in _split(opt_outs)}
        kinds = {"microsoft_mail": "mail", "microsoft_calendar": "calendar"}
    rows = _add_team_connectors(app, accounts, out, kinds, common, scope)
    print_rows(rows, ["user", "connector", "kind", "result"], as_json=as_json, title=f"team {team}")


def _add_team_connectors(
    app: App,
    accounts: list[str],
    out: set[str],
    kinds: dict[str, str],
    common: dict[str, Any],
    scope: str,
) -> list[dict[str, Any]]:
    """A connector per account and kind (name ``<user>-<suffix>``); the rows say what
    became of each."""
    path = _config_file(app)
    document = config_edit.read(path)
    existing = set(config_edit.connector_names(document))
    rows: list[dict[str, Any]] = []
    for account in dict.fromkeys(accounts):
        for kind, suffix in kinds.items():
            name = f"{_NAME_UNSAFE.sub('-', account.partition('@')[0])}-{suffix}"
            row = {"user": account, "connector": name, "kind": kind}
            if account in out:
                rows.append(row | {"result": "skipped: opted out"})
                continue
            if name in existing:
                rows.append(row | {"result": "skipped: exists"})
                continue
            values: dict[str, Any] = {"name": name, "kind": kind, "account": account, **common}
            if kind in ("gmail", "microsoft_mail"):
                values["scope"] = scope
            config_edit.add_connector(document, values)
            existing.add(name)
            rows.append(row | {"result": "added"})
    if any(row["result"] == "added" for row in rows):
        _write(path, document)
    return rows


def _tenant_users(
    tenant: str, client_id: str, secret_env: str, authority_host: str, graph_endpoint: str
) -> list[str]:
    """The tenant's mailbox users, listed with the app's own permission (User.Read.All)."""
    from connectors.microsoft.auth import APP_PERMISSIONS, AppTokens
    from connectors.microsoft.directory import mailbox_users
    from connectors.microsoft.graph import GraphClient

    secret = os.environ.get(secret_env)
    if not secret:
        _refuse(f"${secret_env} is not set: export the app's client secret in it first")
    hint = (
        f"grant the app the {APP_PERMISSIONS['users']} application permission, with admin consent"
    )
    tokens = AppTokens(Tenant(tenant, client_id, authority_host), secret, hint=hint)
    try:
        client = GraphClient(tokens, graph_endpoint, auth_hint=hint)
        return [user.address for user in mailbox_users(client)]
    except AuthError as exc:
        _refuse(f"listing the users of {tenant}: {exc}; {exc.hint}")
    except ConnectorError as exc:
        _refuse(f"listing the users of {tenant}: {exc}")


def _user_in(user: str, listed: list[str], *, strict: bool = True) -> str:
    """A --users or --opt-out entry as one of the tenant's addresses (a bare name matches
    the part before the @)."""
    wanted = user.strip().lower()
    for address in listed:
        if wanted in (address, address.partition("@")[0]):
            return address
    if strict:
        _refuse(f"{user!r} is not an enabled member with a mailbox in the tenant")
    return wanted


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _address(user: str, domain: str) -> str:
    user = user.strip().lower()
    return user if "@" in user else f"{user}@{domain.strip().lower()}"


def _check_service_account_key(key_file: Path) -> None:
    try:
        info = json.loads(key_file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        _refuse(f"{key_file}: not a readable JSON key: {exc}")
    if not isinstance(info, dict) or info.get("type") != "service_account":
        _refuse(f"{key_file} is not a service account key (its type must be service_account)")
    if not info.get("client_email") or not info.get("private_key"):
        _refuse(f"{key_file} lacks client_email or private_key")
