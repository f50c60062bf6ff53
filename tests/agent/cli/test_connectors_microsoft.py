"""``connectors add-team --tenant`` and ``connectors auth`` for Microsoft 365, as an admin
runs them: the real command in a subprocess, against the fake Graph server over HTTPS."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from config.secrets import TokenStore
from tests.support.cli import run_cli
from tests.support.fake_graph import FakeGraph
from tests.support.graph_connectors import (
    ALICE,
    APP,
    BASIC_APP,
    BOB,
    PUBLIC_APP,
    SECRET,
    approve_when_asked,
)


def _init(tmp_path: Path) -> Path:
    assert run_cli("init", cwd=tmp_path).returncode == 0
    assert run_cli("db", "upgrade", cwd=tmp_path).returncode == 0
    return tmp_path / "crm-sync.toml"


def _connectors(config: Path) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in tomllib.loads(config.read_text())["connectors"]}


def test_add_team_lists_the_tenants_mailboxes_and_leaves_out_opt_outs(
    graph: FakeGraph, tmp_path: Path
) -> None:
    graph.add_user(ALICE, "Alice")
    graph.add_user(BOB, "Bob")
    graph.add_user("carol@contoso.com", "Carol")
    config = _init(tmp_path)
    team = [
        "connectors", "add-team", "--tenant", graph.tenant_id, "--client-id", APP,
        "--client-secret-env", "M365_SECRET", "--opt-out", "carol", "--since", "90d",
        "--authority-host", graph.url, "--graph-endpoint", graph.graph_url, "--json",
    ]  # fmt: skip
    added = run_cli(*team, cwd=tmp_path, env={"M365_SECRET": SECRET})

    assert added.returncode == 0, added.stderr
    rows = {(r["connector"], r["result"]) for r in json.loads(added.stdout)}
    assert rows == {
        ("alice-mail", "added"),
        ("alice-calendar", "added"),
        ("bob-mail", "added"),
        ("bob-calendar", "added"),
        ("carol-mail", "skipped: opted out"),
        ("carol-calendar", "skipped: opted out"),
    }
    written = _connectors(config)
    assert written["alice-mail"] | {} == {
        "name": "alice-mail",
        "kind": "microsoft_mail",
        "account": ALICE,
        "since": "90d",
        "tenant": graph.tenant_id,
        "client_id": APP,
        "auth": "app",
        "client_secret": "${M365_SECRET}",
        "authority_host": graph.url,
        "graph_endpoint": graph.graph_url,
        "scope": "metadata",
    }
    assert SECRET not in config.read_text()
    again = run_cli(*team, cwd=tmp_path, env={"M365_SECRET": SECRET})
    assert {r["result"] for r in json.loads(again.stdout)} == {
        "skipped: exists",
        "skipped: opted out",
    }


def test_add_team_without_the_permission_to_list_users_says_what_to_grant(
    graph: FakeGraph, tmp_path: Path
) -> None:
    graph.add_user(ALICE, "Alice")
    _init(tmp_path)
    refused = run_cli(
        "connectors", "add-team", "--tenant", graph.tenant_id, "--client-id", BASIC_APP,
        "--client-secret-env", "M365_SECRET", "--authority-host", graph.url,
        "--graph-endpoint", graph.graph_url,
        cwd=tmp_path, env={"M365_SECRET": SECRET},
    )  # fmt: skip
    assert refused.returncode == 2
    assert "User.Read.All" in refused.stderr


def test_auth_runs_the_device_code_flow_and_stores_the_grant_encrypted(
    graph: FakeGraph, tmp_path: Path
) -> None:
    graph.add_user(ALICE, "Alice")
    config = _init(tmp_path)
    with config.open("a") as file:
        file.write(
            "\n[[connectors]]\n"
            'name = "alice-mail"\nkind = "microsoft_mail"\nauth = "delegated"\n'
            f'account = "{ALICE}"\ntenant = "{graph.tenant_id}"\nclient_id = "{PUBLIC_APP}"\n'
            f'authority_host = "{graph.url}"\ngraph_endpoint = "{graph.graph_url}"\n'
        )
    approve_when_asked(graph, ALICE)
    granted = run_cli("connectors", "auth", "alice-mail", cwd=tmp_path)

    assert granted.returncode == 0, granted.stderr
    assert "enter the code" in granted.stdout and "access granted" in granted.stdout
    store = TokenStore.open(
        tmp_path / "crm-sync-tokens", key_file=tmp_path / "crm-sync.key", environ={}
    )
    record = store.load("alice-mail")
    assert record is not None and record["account"] == ALICE
    assert "refresh" not in (tmp_path / "crm-sync-tokens" / "alice-mail.token").read_text()
    granted = [t["target"] for t in json.loads(record["cache"])["AccessToken"].values()]
    assert granted and all("Mail.ReadBasic" in t.split() for t in granted), granted

    tested = run_cli("connectors", "test", "alice-mail", "--json", cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr


def test_auth_refuses_an_app_only_connector_with_the_reason(
    graph: FakeGraph, tmp_path: Path
) -> None:
    config = _init(tmp_path)
    with config.open("a") as file:
        file.write(
            "\n[[connectors]]\n"
            f'name = "m"\nkind = "microsoft_mail"\naccount = "{ALICE}"\n'
            f'tenant = "t.example"\nclient_id = "{APP}"\nclient_secret = "${{S}}"\n'
        )
    refused = run_cli("connectors", "auth", "m", cwd=tmp_path, env={"S": "x"})
    assert refused.returncode == 2
    assert "Grant admin consent" in refused.stderr
