"""Text a terminal can only display, never obey.

Much of what crm-sync prints or logs came from mail and calendars --
subjects, snippets, names, error texts -- written by strangers. These two
functions are the one place that makes such text inert: :func:`plain` for
terminals and plain log lines, :func:`json_text` for JSON output and JSON
log lines. The CLI's consoles (``agent.cli.output``) and the logs
(``agent.runtime.logs``) both go through them.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)"
    r"|\x1b[ -/]*[0-~]?",
    re.S,
)
_BREAK = re.compile(r"[\t\n\u2028\u2029]")
_TAB = re.compile(r"[\t\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_ANY = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Every character the three patterns above act on: text without one is already plain."""
_JSON_RAW = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def plain(text: str, *, multiline: bool = False) -> str:
    """``text`` as a terminal can only display it, never obey it.

    Escape sequences go whole (CSI, OSC, DCS, APC, PM, SOS and two-byte ones,
    in their 7-bit and 8-bit forms), so no parameter is left behind as
    litter; then every other C0 and C1 control and the bidi overrides and
    isolates, which reorder what a reader sees. Tabs and line breaks become
    spaces, so one field stays on one line; ``multiline`` keeps ``\\n`` for
    text printed as several lines on purpose. Rich markup is left as it is:
    the CLI's consoles parse none (``agent.cli.output``).

    Text holding none of those characters, nearly all of it, is returned as it
    is after one scan (a page prints hundreds of values).
    """
    return text if _ANY.search(text) is None else _scrubbed(text, multiline)


def _scrubbed(text: str, multiline: bool) -> str:
    text = _SEQUENCE.sub("", text)
    text = (_TAB if multiline else _BREAK).sub(" ", text)
    return _CONTROL.sub("", text)


def json_text(value: Any, *, indent: int | None = None) -> str:
    """JSON that keeps readable letters as they are but no character a terminal obeys.

    ``json.dumps`` escapes C0 controls only: DEL, the C1 controls (U+009B
    is CSI to some terminals) and the bidi controls are escaped here too,
    which changes no value a JSON reader gets back.
    """
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _JSON_RAW.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
