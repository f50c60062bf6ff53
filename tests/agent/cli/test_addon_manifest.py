"""``crm-sync addon manifest``: the deployment resource Google is given, as an admin prints it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli

BASE = "https://crm.example.com"


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
