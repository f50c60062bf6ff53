"""``crm-sync addon``: the Gmail add-on's deployment resource."""

from __future__ import annotations

import click


@click.group()
def addon() -> None:
    """The Gmail add-on (Google Workspace add-on on HTTP endpoints)."""
