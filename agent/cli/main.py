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
from agent.runtime.app import App, SchemaOutOfDate
from agent.runtime.db_errors import describe, is_database_error, parse_url
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
}
"""Command name -> ``module:attribute``; a command's module is imported when it runs."""


class _LazyGroup(click.Group):
    """Imports a command's module only when that command is used.

    The modules pull in the Google client, HTML and calendar parsers; a
    ``crm-sync status`` needs none of them and starts in half the time.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

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
        errors.print(f"config error: {exc.path or 'configuration'}", highlight=False)
        for problem in exc.problems:
            errors.print(f"  {problem}", highlight=False, markup=False)
        sys.exit(EXIT_USAGE)
    except SchemaOutOfDate as exc:
        errors.print(f"error: {exc}")
        sys.exit(EXIT_FAILURE)
    except Exception as exc:
        if not is_database_error(exc):
            raise
        if app.debug:
            errors.print(scrubbed_traceback(exc), highlight=False, markup=False, soft_wrap=True)
        errors.print(_database_error(app, exc), highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_FAILURE)


def _database_error(app: App, exc: BaseException) -> str:
    """One line: what failed, where, and what to try, with where the URL was set."""
    try:
        url, source = parse_url(app.database_url), app.database_source
    except Exception:
        url, source = None, None
    return describe(exc, url).line(source)
