"""``crm-sync addon``: the Gmail add-on's deployment resource."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import click

from agent.cli.common import configured_base_url, pass_app
from agent.runtime.app import App
from agent.web.addon import GMAIL_PATH, HOMEPAGE_PATH

SCOPES = (
    "https://www.googleapis.com/auth/gmail.addons.execute",
    "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
    "https://www.googleapis.com/auth/userinfo.email",
)
"""The least the add-on needs: to run in Gmail, to read the open message's headers (with
the per-message token Gmail hands it), and the user's address in their ID token."""
LOGO = "https://www.gstatic.com/images/icons/material/system/1x/contacts_black_48dp.png"


@click.group()
def addon() -> None:
    """The Gmail add-on (Google Workspace add-on on HTTP endpoints)."""


def _https_root(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise click.BadParameter(
            "must be the web app's https:// address, e.g. https://crm.example.com",
            param_hint="--base-url",
        )
    return value.strip().rstrip("/")


@addon.command()
@click.option(
    "--base-url",
    metavar="URL",
    help="The web app's public https:// address (default: [web] base_url).",
)
@click.option("--name", default="crm-sync", show_default=True, help="The add-on's name in Gmail.")
@click.option("--logo-url", default=LOGO, metavar="URL", help="The add-on's icon.")
@pass_app
def manifest(app: App, base_url: str | None, name: str, logo_url: str) -> None:
    """Print the add-on's deployment resource (JSON) for the web app at URL.

    Deploy it with `gcloud workspace-add-ons deployments create crm-sync
    --deployment-file=FILE` and install it for testing with `gcloud
    workspace-add-ons deployments install crm-sync`. Google then posts to the
    web app's /addon/ endpoints with an ID token of the project's add-on
    service account: put that address in [web] addon_service_account, and set
    [web] base_url to the same URL, the audience those tokens carry.
    """
    root = _https_root(base_url or configured_base_url(app))
    click.echo(json.dumps(deployment(root, name=name, logo_url=logo_url), indent=2))


def deployment(base_url: str, *, name: str = "crm-sync", logo_url: str = LOGO) -> dict[str, Any]:
    """The deployment resource (gsuiteaddons v1 ``Deployment``): the homepage and the Gmail
    message triggers on the web app's endpoints, the system ID token in every request."""
    return {
        "oauthScopes": list(SCOPES),
        "addOns": {
            "common": {
                "name": name,
                "logoUrl": logo_url,
                "homepageTrigger": {"runFunction": base_url + HOMEPAGE_PATH},
                "openLinkUrlPrefixes": [base_url + "/"],
            },
            "gmail": {
                "contextualTriggers": [
                    {"unconditional": {}, "onTriggerFunction": base_url + GMAIL_PATH}
                ]
            },
            "httpOptions": {"authorizationHeader": "SYSTEM_ID_TOKEN"},
        },
    }
