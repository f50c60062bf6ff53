"""Pages from templates, with every value escaped and made inert.

Autoescape turns markup into text; ``finalize`` then passes every string
printed by a template through :func:`agent.runtime.inert_text.plain`, which
drops the controls and bidi overrides that would reorder what a reader sees
(a name that displays as someone else's). Nothing a template prints from
the database can become markup, script or a misleading line.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from agent.runtime.inert_text import plain
from agent.runtime.timing import duration_text
from agent.web.context import USER_KEY, state_of
from agent.web.security import csrf_token
from storage.history import KNOWN_SAMPLE

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
FLASH_KEY = "flash"


def environment() -> Environment:
    """Templates are files of the installed package, so they are read once per process:
    with ``auto_reload`` Jinja would look at each file's time on every page."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        auto_reload=False,
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        finalize=lambda value: plain(value) if isinstance(value, str) else value,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["ago"] = ago
    env.filters["duration"] = duration
    env.globals["known_sample"] = KNOWN_SAMPLE
    env.globals["query"] = lambda **params: urlencode({k: v for k, v in params.items() if v})
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    state = state_of(request)
    session = request.session
    flashes = session.pop(FLASH_KEY, []) if USER_KEY in session else []
    html = state.templates.get_template(template).render(
        request=request,
        csrf=csrf_token(session),
        me=context.pop("me", None),
        flashes=flashes,
        google=state.google,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def flash(request: Request, message: str, kind: str = "info") -> None:
    held = list(request.session.get(FLASH_KEY, []))[-4:]
    request.session[FLASH_KEY] = [*held, {"kind": kind, "text": message}]


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float | None) -> str:
    return "—" if seconds is None else duration_text(timedelta(seconds=seconds))


def ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(timezone.utc) - value).total_seconds()
    if seconds < 0:
        return "ahead"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
