"""The ``crm-sync`` command line.

Exit codes: 0 success, 1 a failure at run time, 2 a usage or config error.
Every listing takes ``--json``. Each command group lives in its own module
under ``agent/commands``; this module assembles them and turns the errors an
admin can fix into messages.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from agent.cli.common import EXIT_FAILURE, EXIT_USAGE
from agent.cli.output import errors
from agent.runtime import logs
from agent.runtime.app import App, DatabaseNotCreated, SchemaOutOfDate
from agent.runtime.db_errors import Problem, describe, is_database_error, parse_url
from agent.runtime.debug import configure_logs, scrubbed_traceback
from config import ConfigError
from config.loader import DEFAULT_FILE, ENV_CONFIG

COMMANDS = {
    "init": "agent.cli.setup:init",
    "demo": "agent.cli.setup:demo",
    "db": "agent.cli.setup:db",
    "status": "agent.cli.status:status",
    "run": "agent.cli.run:run",
    "sync": "agent.cli.sync:sync",
    "import": "agent.cli.sync:import_",
    "contacts": "agent.cli.contacts:contacts",
    "conflicts": "agent.cli.conflicts:conflicts",
    "companies": "agent.cli.companies:companies",
    "privacy": "agent.cli.privacy:privacy",
    "forget": "agent.cli.privacy:forget",
    "connectors": "agent.cli.connectors:connectors",
    "verify": "agent.cli.verify:verify",
    "doctor": "agent.cli.doctor:doctor",
    "serve": "agent.cli.web:serve",
    "users": "agent.cli.users:users",
    "tokens": "agent.cli.users:tokens",
    "audit": "agent.cli.audit:audit",
    "tags": "agent.cli.tags:tags_group",
    "segments": "agent.cli.segments:segments_group",
    "report": "agent.cli.report:report",
    "addon": "agent.cli.gmail_addon:addon",
    "addin": "agent.cli.outlook_addin:addin",
    "export": "agent.cli.export:export",
}
"""Command name -> ``module:attribute``; a command's module is imported when it runs."""

CREATES_DATABASE = ("db", "upgrade")
"""The one command that may create the database; every other one needs it created first."""


class _LazyGroup(click.Group):
    """Imports a command's module only when that command is used.

    The modules pull in the Google client, HTML and calendar parsers; a
    ``crm-sync status`` needs none of them and starts in half the time.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Also tells the app whether the command about to run may create the database."""
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(ctx.obj, App):
            ctx.obj.creates_database = (name, *rest[:1]) == CREATES_DATABASE
        return name, command, rest

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, attribute = COMMANDS[name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"Config file. Default: ${ENV_CONFIG}, then ./{DEFAULT_FILE}.",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Show the traceback of an error (secrets still masked), not just its one line.",
)
@click.version_option(package_name="crm-sync")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """crm-sync logs your team's email and meetings into a shared customer database.

    Start with `crm-sync init` to write a config file, `crm-sync db upgrade`
    to create the database, then `crm-sync status`.
    """
    configure_logs(debug, level=logs.level_from_env(default="WARNING"))
    app = ctx.ensure_object(App)
    app.config_path, app.debug = config_path, debug


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns the errors an admin can fix into messages and exit codes."""
    app = App()
    try:
        cli.main(args=argv, prog_name="crm-sync", standalone_mode=False, obj=app)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        errors.print("aborted")
        sys.exit(EXIT_FAILURE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        if app.debug:
            errors.print(scrubbed_traceback(exc), highlight=False, markup=False, soft_wrap=True)
        _config_error(exc)
        sys.exit(EXIT_USAGE)
    except DatabaseNotCreated as exc:
        errors.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    except SchemaOutOfDate as exc:
        errors.print(f"error: {exc}")
        sys.exit(EXIT_FAILURE)
    except Exception as exc:
        if not is_database_error(exc):
            raise
        if app.debug:
            errors.print(scrubbed_traceback(exc), highlight=False, markup=False, soft_wrap=True)
        problem, source = _database_problem(app, exc)
        errors.print(problem.line(source), highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE if problem.configuration else EXIT_FAILURE)


def _config_error(exc: ConfigError) -> None:
    """The file (or ``configuration``), then one line per problem, each unbroken."""
    where = exc.path or "configuration"
    errors.print(f"config error: {where}", highlight=False, markup=False, soft_wrap=True)
    for problem in exc.problems:
        errors.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)


def _database_problem(app: App, exc: BaseException) -> tuple[Problem, str | None]:
    """What failed, and where the URL was set (to name it when connecting failed)."""
    try:
        url, source = parse_url(app.database_url), app.database_source
    except Exception:
        url, source = None, None
    return describe(exc, url), source
