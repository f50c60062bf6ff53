"""Logging for the agent: stderr (what systemd's journal collects), plain or JSON lines.

Logs travel further than the database: into journals, log shippers and bug
reports. So every record passes :class:`PrivacyFilter` before it is written:

* at INFO and above, email addresses are masked to their first letter and
  domain (``j***@example.com``), which still tells an admin which mailbox or
  company a line is about;
* at every level, secrets never pass: bearer and OAuth tokens, JWTs, Fernet
  tokens, private keys, and the values of ``password=``/``token=``-like fields;
* at every level, message content never passes: ``bytes`` arguments (raw
  mail) and mail or meeting records are rendered as placeholders, long runs of
  encoded data are cut, and a text argument keeps only its first line, up to
  :data:`MAX_ARG_CHARS` characters;
* at every level, nothing in a line can steer the terminal or pager that
  shows it: a subject or an error text from a mailbox is made plain
  (:func:`agent.cli.output.plain`), the message on one line, a traceback line by
  line.

DEBUG keeps full addresses because finding out why one message was skipped
needs them; it is off unless asked for.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

from agent.runtime.inert_text import json_text, plain
from connectors.records import CalendarEvent, CalendarReply, MailMessage

ENV_LOG_LEVEL = "CRM_SYNC_LOG_LEVEL"
MAX_ARG_CHARS = 200
MAX_MESSAGE_CHARS = 2000
_MARK = "_crm_sync_handler"
_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_LOCAL = r"[\w.!#$%&'*+?^`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(
    rf"(?<!{_LOCAL})([\w!#$%&'*+?^`{{|}}~-]){_LOCAL}*(@|%40)({_LABEL}(?:\.{_LABEL})+)"
)
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
        "<private key>",
    ),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)\S*@"), r"\1***@"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), r"\1 ***"),
    (
        re.compile(
            r"(?i)([\"']?\b(?:access_token|refresh_token|id_token|token|client_secret|secret"
            r"|password|passwd|authorization|assertion|code_verifier|api_key|private_key)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\"'\s,&;}]+"
        ),
        r"\1***",
    ),
    (re.compile(r"([?&]code=)[^&\s]+"), r"\1***"),
    (re.compile(r"\bya29\.[\w.-]+"), "***"),
    (re.compile(r"\b1//[\w.-]+"), "***"),
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*"), "***"),
    (re.compile(r"\bgAAAAA[\w-]+=*"), "***"),
)
_ENCODED = re.compile(r"[A-Za-z0-9+/_-]{80,}={0,2}")


def _mask_address(match: re.Match[str]) -> str:
    first, at, domain = match.groups()
    return f"{first}***{at}{domain}"


def scrub(text: str, *, addresses: bool) -> str:
    """``text`` without secrets and encoded data; with masked addresses if ``addresses``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    text = _ENCODED.sub(lambda m: f"<{len(m.group())} chars of encoded data>", text)
    if addresses:
        text = _ADDRESS.sub(_mask_address, text)
    return text


def _safe_arg(value: object) -> object:
    """A log argument that cannot carry message content."""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, MailMessage | CalendarEvent | CalendarReply):
        return f"<{type(value).__name__} {value.source_id}>"
    if isinstance(value, str):
        return _first_line(value, MAX_ARG_CHARS)
    return value


def _first_line(text: str, limit: int) -> str:
    line, newline, _rest = text.partition("\n")
    if len(line) > limit:
        return f"{line[:limit]}… [{len(text) - limit} chars cut]"
    if newline:
        return f"{line} … [{len(text) - len(line)} chars cut]"
    return line


class PrivacyFilter(logging.Filter):
    """Rewrites each record in place (see the module docstring); never drops one.

    The message is rendered here with safe arguments, so what any formatter
    writes afterwards is the scrubbed text; the exception text likewise.
    """

    def __init__(self, address_level: int = logging.INFO) -> None:
        super().__init__()
        self.address_level = address_level

    def filter(self, record: logging.LogRecord) -> bool:
        addresses = record.levelno >= self.address_level
        if isinstance(record.args, Mapping):
            record.args = {key: _safe_arg(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_safe_arg(value) for value in record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!s} (unformattable arguments)"
        message = plain(message)
        if len(message) > MAX_MESSAGE_CHARS:
            cut = len(message) - MAX_MESSAGE_CHARS
            message = f"{message[:MAX_MESSAGE_CHARS]}… [{cut} chars cut]"
        record.msg = scrub(message, addresses=addresses)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = "\n".join(
                scrub(_first_line(line, MAX_ARG_CHARS), addresses=addresses)
                for line in plain(record.exc_text, multiline=True).split("\n")
            )
        if record.stack_info:
            record.stack_info = scrub(plain(record.stack_info, multiline=True), addresses=addresses)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``[, ``exception``]."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        connector = getattr(record, "connector", None)
        if connector is not None:
            entry["connector"] = str(connector)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json_text(entry)


def level_from_env(default: str = "INFO") -> str:
    """``$CRM_SYNC_LOG_LEVEL`` (DEBUG, INFO, WARNING...), else ``default``."""
    return os.environ.get(ENV_LOG_LEVEL, "").strip().upper() or default


def configure(
    json: bool = False, level: int | str = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to stderr (or ``stream``) through the privacy filter.

    Calling it again replaces the handler it installed before, so a command
    can reconfigure what the CLI set up.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _MARK, True)
    handler.addFilter(PrivacyFilter())
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(_PLAIN))
    root.addHandler(handler)
    root.setLevel(
        level
        if isinstance(level, int)
        else logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    )
    # Its INFO line on every discovery-document build is noise, not news.
    logging.getLogger("googleapiclient.discovery_cache").setLevel(logging.ERROR)
    return handler
