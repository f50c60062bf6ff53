"""Every command a person can run, with what each needs on its command line: for tests
that hold every command to a rule (a config required, no traceback on any fault)."""

from __future__ import annotations

from collections.abc import Iterator

import click

ARGUMENTS = {
    ("companies", "merge"): ["acme.example", "acme.co.example"],
    ("conflicts", "resolve"): ["1", "--keep", "latest"],
    ("connectors", "add"): [
        "mbox",
        "--name",
        "carol",
        "--account",
        "carol@example.com",
        "--path",
        "mail.mbox",
    ],
    ("connectors", "add-team"): [
        "--domain",
        "example.com",
        "--key-file",
        "key.json",
        "--users",
        "a",
    ],
    ("connectors", "auth"): ["alice-gmail"],
    ("connectors", "pause"): ["alice-gmail"],
    ("connectors", "remove"): ["alice-gmail"],
    ("connectors", "resume"): ["alice-gmail"],
    ("connectors", "test"): ["alice-gmail"],
    ("contacts", "history"): ["ann@acme.example"],
    ("contacts", "import"): ["people.csv"],
    ("contacts", "merge"): ["ann@acme.example", "ann.lee@acme.example"],
    ("contacts", "set"): ["ann@acme.example", "title=CTO"],
    ("contacts", "show"): ["ann@acme.example"],
    ("export",): ["--out", "exported"],
    ("forget",): ["ann@acme.example", "--yes"],
    ("segments", "add"): ["cold", "--tag", "customer"],
    ("segments", "remove"): ["cold"],
    ("segments", "show"): ["cold"],
    ("tags", "add"): ["customer", "--contact", "ann@acme.example"],
    ("tags", "apply"): ["cold", "--tag", "customer"],
    ("tags", "import"): ["people.csv"],
    ("tags", "remove"): ["customer", "--contact", "ann@acme.example"],
    ("import", "mbox"): ["mail.mbox", "--mailbox", "carol@example.com"],
    ("tokens", "create"): ["ann@example.com"],
    ("tokens", "revoke"): ["ann@example.com", "api"],
    ("users", "add"): ["ann@example.com", "--no-password"],
    ("users", "passwd"): ["ann@example.com", "--password-env", "CRM_TEST_UNSET_PASSWORD"],
    ("users", "remove"): ["ann@example.com"],
    ("users", "role"): ["ann@example.com", "admin"],
    ("verify",): ["alice-gmail"],
}
"""What each command needs on its command line to get as far as reading the config."""
NEEDS_NO_CONFIG = {("init",), ("demo",)}


def _commands() -> Iterator[tuple[str, ...]]:
    """Every command a person can run, as its words (``("connectors", "add")``)."""
    from agent.cli.main import cli

    def leaves(
        group: click.Group, ctx: click.Context, words: tuple[str, ...]
    ) -> Iterator[tuple[str, ...]]:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                yield from leaves(command, ctx, (*words, name))
            else:
                yield (*words, name)

    yield from leaves(cli, click.Context(cli), ())


COMMANDS = sorted(set(_commands()) - NEEDS_NO_CONFIG)
