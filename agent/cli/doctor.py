"""``doctor``: what is wrong or doubtful in the setup, one line each with its fix."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import click

from agent.cli.common import EXIT_FAILURE
from agent.cli.output import console, print_json
from agent.cli.wording import command_line, counted
from agent.runtime.app import App
from agent.runtime.checks import Finding, counts, diagnose, load_leniently
from config import Settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per finding.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the config, the private files, the database and every connector's secrets.

    Finds what no error reports: values left as examples (example.com,
    *.example, *.invalid, *.test) in internal_domains, never_log and the
    connectors' accounts; a database, token key or token that other users can
    read; a database that does not answer, has no tables or an old schema; a
    connector without its password, key file or OAuth grant, or an mbox/ics
    path that is not there. Connects to the database, never to a mailbox:
    `crm-sync connectors test NAME` does that.

    Prints one line per finding with its fix: "error" when the agent cannot
    work as configured, "warning" when it works but probably not as meant. A
    ${VAR} the config uses that this shell does not set is an error here, and
    the rest is checked as if it were set. Exits with status 1 when there is
    an error, 0 when there are only warnings or nothing. `crm-sync status`
    counts the findings and points here.
    """
    app = ctx.find_object(App)
    explicit = app.config_path if app else None
    settings, path, unset = load_leniently(explicit)
    base = path.parent if path else Path.cwd()
    found = diagnose(settings, base, unset=unset, command=partial(command_line, explicit))
    if as_json:
        print_json([finding.as_row() for finding in found])
    else:
        _print(found, path)
    if counts(found)[0]:
        sys.exit(EXIT_FAILURE)


def _print(found: Sequence[Finding], path: Path | None) -> None:
    console.print(f"checked {path or 'the built-in defaults (no config file)'}", soft_wrap=True)
    for finding in found:
        console.print(finding.line(), soft_wrap=True, highlight=False)
    errors, warnings = counts(found)
    if not found:
        console.print("nothing to fix")
    else:
        console.print(f"{counted(errors, 'error')}, {counted(warnings, 'warning')}")


def doctor_hint(settings: Settings, base: Path, config_path: Path | None) -> str | None:
    """The line `status` prints when `doctor` would report something; None when it would not.

    Leaves out the database check: `status` has just read the database.
    """
    command = partial(command_line, config_path)
    errors, warnings = counts(diagnose(settings, base, database=False, command=command))
    if not errors and not warnings:
        return None
    parts = ([counted(errors, "error")] if errors else []) + (
        [counted(warnings, "warning")] if warnings else []
    )
    return f"{', '.join(parts)}: run `{command_line(config_path, 'doctor')}`"
