"""``crm-sync addin``: the Outlook add-in's manifest."""

from __future__ import annotations

import click


@click.group()
def addin() -> None:
    """The Outlook add-in (a task pane beside the open message)."""
