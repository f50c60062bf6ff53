"""The ``crm-sync`` command line.

Exit codes: 0 success, 1 a failure at run time, 2 a usage or config error.
Every listing takes ``--json``. Each command group lives in its own module
under ``agent/commands``; this module assembles them and turns the errors an
admin can fix into messages.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from agent import logs
from agent.app import App, SchemaOutOfDate
from agent.commands import (
    companies,
    conflicts,
    connectors,
    contacts,
    contacts_merge,
    privacy,
    run,
    setup,
    status,
    sync,
    verify,
)
from agent.commands.common import EXIT_FAILURE, EXIT_USAGE
from agent.output import errors
from config import ConfigError
from config.loader import DEFAULT_FILE, ENV_CONFIG


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"Config file. Default: ${ENV_CONFIG}, then ./{DEFAULT_FILE}.",
)
@click.version_option(package_name="crm-sync")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """crm-sync logs your team's email and meetings into a shared customer database.

    Start with `crm-sync init` to write a config file, `crm-sync db upgrade`
    to create the database, then `crm-sync status`.
    """
    logs.configure(level=logs.level_from_env(default="WARNING"))
    ctx.obj = App(config_path=config_path)


for command in (
    setup.init,
    setup.demo,
    setup.db,
    status.status,
    run.run,
    sync.sync,
    sync.import_,
    contacts.contacts,
    conflicts.conflicts,
    companies.companies,
    privacy.privacy,
    privacy.forget,
    connectors.connectors,
    verify.verify,
):
    cli.add_command(command)
contacts.contacts.add_command(contacts_merge.merge)


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns the errors an admin can fix into messages and exit codes."""
    try:
        cli.main(args=argv, prog_name="crm-sync", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        errors.print("aborted")
        sys.exit(EXIT_FAILURE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        errors.print(f"config error: {exc.path or 'configuration'}", highlight=False)
        for problem in exc.problems:
            errors.print(f"  {problem}", highlight=False, markup=False)
        sys.exit(EXIT_USAGE)
    except SchemaOutOfDate as exc:
        errors.print(f"error: {exc}")
        sys.exit(EXIT_FAILURE)
    except OperationalError as exc:
        errors.print(f"database error: {exc.orig}", highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
    except SQLAlchemyError as exc:
        errors.print(f"database error: {exc}", highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
