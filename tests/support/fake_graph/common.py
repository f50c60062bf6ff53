"""What every part of the fake shares: a request as a handler sees it, Graph's answer shapes.

Handlers take a :class:`GraphRequest` and return a JSON mapping (or an
:class:`~tests.support.fake_google.api.Answer` for non-JSON bodies such as
``$value``), or raise :class:`GraphError`, which the server renders in Graph's
error shape (``{"error": {"code", "message", "innerError": {"date",
"request-id", "client-request-id"}}}``, "Microsoft Graph error responses and
resource types", /graph/errors).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.fake_google.api import Answer

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
"""The Content-Type Graph answers JSON with (as in the /graph/json-batching example)."""

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


class GraphError(Exception):
    """An answer in Graph's error shape; handlers raise it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        inner_code: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.inner_code = inner_code

    def body(self, client_request_id: str | None = None) -> dict[str, Any]:
        inner: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": str(uuid.uuid4()),
            "client-request-id": client_request_id or str(uuid.uuid4()),
        }
        if self.inner_code:
            inner = {"code": self.inner_code, **inner}
        return {"error": {"code": self.code, "message": self.message, "innerError": inner}}


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def access_denied() -> GraphError:
    return GraphError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


def throttled(status: int, retry_after: float | None) -> GraphError:
    """The answer of a throttled (429) or unavailable (503) service.

    Codes from /graph/errors: ``activityLimitReached`` ("The app or user has
    been throttled") and ``serviceNotAvailable`` ("... There may be a
    Retry-After header"); /graph/throttling: 429 with a suggested wait in
    ``Retry-After``."""
    headers = {} if retry_after is None else {"Retry-After": str(int(retry_after))}
    if status == 429:
        return GraphError(
            429,
            "activityLimitReached",
            "The request has been throttled",
            headers=headers,
            inner_code="throttledRequest",
        )
    if status == 503:
        return GraphError(
            503, "serviceNotAvailable", "The service is not available.", headers=headers
        )
    if status == 504:
        return GraphError(504, "UnknownError", "", headers=headers)
    return GraphError(status, "generalException", "An unspecified error has occurred.")


@dataclass(frozen=True)
class Grant:
    """Who an access token speaks for.

    ``user_id`` is ``None`` for an app-only token (client credentials);
    ``permissions`` are the token's roles (app-only) or scopes (delegated),
    short names such as ``Mail.Read``."""

    client_id: str
    user_id: str | None
    permissions: frozenset[str]
    token: str = ""
    issued_at: float = 0.0
    expires_at: float = 0.0

    @property
    def app_only(self) -> bool:
        return self.user_id is None

    def has_any(self, names: Iterable[str]) -> bool:
        return any(name in self.permissions for name in names)


@dataclass(frozen=True)
class GraphRequest:
    """One Graph call as a handler sees it (a plain request or a batch part)."""

    http_method: str
    path: str
    """The path below ``/v1.0`` (``/users/x/messages/y``)."""
    params: Mapping[str, str]
    """Query parameters by lower-case name without the ``$`` (``select``, ``top``)."""
    headers: Mapping[str, str]
    """Header names in lower case."""
    args: Mapping[str, str]
    grant: Grant
    via_me: bool
    base_url: str
    """``https://127.0.0.1:PORT/v1.0``: links are built from it."""
    body: bytes = b""
    applied: list[str] = field(default_factory=list)
    """Preferences the handler applied (sent back in ``Preference-Applied``)."""

    def param(self, name: str) -> str | None:
        return self.params.get(name)

    @property
    def prefer(self) -> dict[str, str]:
        return parse_prefer(self.headers.get("prefer", ""))

    def user_segment(self, user_id: str) -> str:
        return "me" if self.via_me else f"users/{user_id}"


Handler = Callable[[GraphRequest], "Mapping[str, Any] | Answer"]


def parse_prefer(header: str) -> dict[str, str]:
    """``Prefer: odata.maxpagesize=2, outlook.body-content-type="text"`` as a dict.

    Keys in lower case, values unquoted."""
    out: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not name:
            continue
        out[name.strip().lower()] = value.strip().strip('"') if sep else ""
    return out


def page_size(request: GraphRequest, default: int) -> int:
    """``Prefer: odata.maxpagesize`` first, then ``$top``, then ``default``."""
    for text in (request.prefer.get("odata.maxpagesize"), request.param("top")):
        if text is None:
            continue
        if not text.isdigit() or int(text) < 1:
            raise bad_request(f"Invalid page size '{text}'.", "ErrorInvalidParameter")
        return int(text)
    return default


def selected(request: GraphRequest) -> list[str] | None:
    text = request.param("select")
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def check_select(names: Iterable[str], known: Iterable[str], type_name: str) -> None:
    """Graph refuses a ``$select`` naming a property the type does not have."""
    lower = {name.lower() for name in known}
    for name in names:
        if name.lower() not in lower:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
                "RequestBroker--ParseUri",
            )


def project(full: Mapping[str, Any], names: Iterable[str], always: Iterable[str]) -> dict[str, Any]:
    """``full`` limited to ``names`` (matched case-insensitively) plus the ``always`` keys."""
    by_lower = {key.lower(): key for key in full}
    keep = [key for key in always if key in full]
    for name in names:
        key = by_lower.get(name.lower())
        if key is not None and key not in keep:
            keep.append(key)
    return {key: full[key] for key in keep}


def graph_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as Graph writes message times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_time(moment: datetime) -> str:
    """The ``dateTimeTimeZone.dateTime`` shape: seven fractional digits, no offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


_ISO = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2})?)(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_time(text: str) -> datetime:
    """An ISO 8601 date-time as Graph accepts it (no offset means UTC)."""
    match = _ISO.match(text.strip())
    if match is None:
        raise ValueError(text)
    day, clock, _fraction, zone = match.groups()
    value = datetime.fromisoformat(f"{day}T{clock or '00:00'}")
    if zone and zone != "Z":
        return value.replace(tzinfo=datetime.fromisoformat(f"2000-01-01T00:00{zone}").tzinfo)
    return value.replace(tzinfo=UTC)


def json_answer(
    status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Answer:
    return Answer(
        status,
        {"Content-Type": JSON_TYPE, **(headers or {})},
        json.dumps(payload).encode("utf-8"),
    )


def error_answer(error: GraphError, client_request_id: str | None = None) -> Answer:
    return json_answer(error.status, error.body(client_request_id), error.headers)
