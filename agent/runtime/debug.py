"""``--debug``: tracebacks for whoever debugs crm-sync, one line for whoever runs it.

A traceback tells an admin nothing they can act on and buries the line
that does (a database outage logged 120 lines per failed run). Without
``--debug`` every logged exception is cut to one line: the log message, then
the exception's type and first line (a database error described by
:mod:`agent.runtime.db_errors`). With it, tracebacks are logged and printed -- still
scrubbed of secrets like every log line.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from sqlalchemy.engine import URL

from agent.runtime import logs
from agent.runtime.db_errors import describe, is_database_error

_database: URL | None = None


class OneLineExceptions(logging.Filter):
    """Replaces a record's traceback by a one-line summary; runs after the privacy filter."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None and not record.exc_text:
            return True
        summary = summary_of(exc) if exc is not None else (record.exc_text or "").strip()
        summary = summary.splitlines()[-1] if summary else ""
        addresses = record.levelno >= logging.INFO
        record.msg = f"{record.getMessage()}: {logs.scrub(summary, addresses=addresses)}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def name_database(url: URL | None) -> None:
    """The database this process uses: a database error logged later says where it is."""
    global _database
    _database = url


def summary_of(exc: BaseException, database: URL | None = None) -> str:
    """``exc`` in one line, without secrets; a database error names where ``database`` is
    (by default the one this process uses)."""
    if is_database_error(exc):
        return describe(exc, database or _database).line()
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return logs.scrub(text, addresses=False)


def configure_logs(debug: bool, **options: Any) -> logging.Handler:
    """:func:`agent.runtime.logs.configure`, with tracebacks only when ``debug``."""
    handler = logs.configure(**options)
    if not debug:
        handler.addFilter(OneLineExceptions())
    return handler


def scrubbed_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as Python prints it, scrubbed of secrets line by line."""
    text = "".join(traceback.format_exception(exc))
    return "\n".join(logs.scrub(line, addresses=False) for line in text.splitlines())
