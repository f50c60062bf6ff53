"""``crm-sync addon manifest``: the deployment resource Google is given, as an admin prints it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run_cli

BASE = "https://crm.example.com"


@pytest.fixture(autouse=True)
def config(tmp_path: Path) -> Path:
    """Every command reads the config; these take the base URL from it when not given."""
    path = tmp_path / "crm-sync.toml"
    path.write_text("")
    return path


def test_the_manifest_points_every_trigger_at_the_web_app(tmp_path: Path) -> None:
    done = run_cli("addon", "manifest", "--base-url", BASE + "/", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    resource = json.loads(done.stdout)
    assert resource["oauthScopes"] == [
        "https://www.googleapis.com/auth/gmail.addons.execute",
        "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
        "https://www.googleapis.com/auth/userinfo.email",
    ]
    addons = resource["addOns"]
    assert addons["common"]["name"] == "crm-sync"
    assert addons["common"]["logoUrl"].startswith("https://")
    assert addons["common"]["homepageTrigger"] == {"runFunction": BASE + "/addon/homepage"}
    assert addons["common"]["openLinkUrlPrefixes"] == [BASE + "/"]
    assert addons["gmail"] == {
        "contextualTriggers": [{"unconditional": {}, "onTriggerFunction": BASE + "/addon/gmail"}]
    }
    assert addons["httpOptions"] == {"authorizationHeader": "SYSTEM_ID_TOKEN"}
    assert set(resource) == {"oauthScopes", "addOns"}


def test_the_manifest_needs_an_https_address(tmp_path: Path) -> None:
    for url in ("http://crm.example.com", "crm.example.com", "https://crm.example.com/?x=1"):
        done = run_cli("addon", "manifest", "--base-url", url, cwd=tmp_path)
        assert done.returncode == 2, url
        assert "https://" in done.stderr and done.stdout == ""


def test_the_base_url_comes_from_the_config_when_not_given(tmp_path: Path, config: Path) -> None:
    missing = run_cli("addon", "manifest", cwd=tmp_path)
    assert missing.returncode == 2
    assert "give --base-url, or set [web] base_url" in missing.stderr
    config.write_text('[web]\nbase_url = "https://crm.example.com"\n')
    given = run_cli("addon", "manifest", "--base-url", "https://crm.example.com", cwd=tmp_path)
    configured = run_cli("addon", "manifest", cwd=tmp_path)
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout == given.stdout and "https://crm.example.com/" in given.stdout
