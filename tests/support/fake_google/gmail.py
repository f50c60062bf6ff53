"""Gmail v1 as the fake serves it: the read methods a sync uses, over :class:`Mailbox` state.

``users.getProfile``, ``users.labels.list``, ``users.messages.list``,
``users.messages.get`` (minimal, metadata, full, raw) and ``users.history.list``,
with the metadata scope's restrictions (no ``q``, no ``full``/``raw``), and the
subset of Gmail search the connector uses. A Gmail add-on's tokens
(``gmail.addons.current.message.*`` scopes) open one message by ``messages.get``
with that message's own token in ``X-Goog-Gmail-Access-Token``
(:meth:`~.oauth.OAuthServer.issue_message_token`), and nothing else.
"""

from __future__ import annotations

import base64
import contextlib
import email.policy
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from tests.support.fake_google.api import (
    SCOPE_PREFIX,
    ApiError,
    ApiRequest,
    Handler,
    b64url_decode,
    bad_request,
    not_found,
    page_size,
)
from tests.support.fake_google.mailbox import Mailbox, StoredMessage

if TYPE_CHECKING:
    from tests.support.fake_google.server import FakeGoogle

GMAIL_METADATA = SCOPE_PREFIX + "gmail.metadata"
GMAIL_READONLY = SCOPE_PREFIX + "gmail.readonly"
GMAIL_MODIFY = SCOPE_PREFIX + "gmail.modify"
GMAIL_FULL = "https://mail.google.com/"
_GMAIL_READ_SCOPES = frozenset({GMAIL_METADATA, GMAIL_READONLY, GMAIL_MODIFY, GMAIL_FULL})
ADDONS_EXECUTE = SCOPE_PREFIX + "gmail.addons.execute"
ADDONS_CURRENT_METADATA = SCOPE_PREFIX + "gmail.addons.current.message.metadata"
ADDONS_CURRENT_READONLY = SCOPE_PREFIX + "gmail.addons.current.message.readonly"
ADDONS_CURRENT_ACTION = SCOPE_PREFIX + "gmail.addons.current.message.action"
_CURRENT_MESSAGE_SCOPES = frozenset(
    {ADDONS_CURRENT_METADATA, ADDONS_CURRENT_READONLY, ADDONS_CURRENT_ACTION}
)
MESSAGE_TOKEN_HEADER = "x-goog-gmail-access-token"

GMAIL_UNITS: Mapping[str, int] = {
    "users.getProfile": 1,
    "users.labels.list": 1,
    "users.messages.list": 5,
    "users.messages.get": 5,
    "users.history.list": 2,
}
SYSTEM_LABELS = (
    "INBOX",
    "SENT",
    "DRAFT",
    "SPAM",
    "TRASH",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
    "CHAT",
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
)
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
_HISTORY_FIELDS = {
    "messageAdded": "messagesAdded",
    "messageDeleted": "messagesDeleted",
    "labelAdded": "labelsAdded",
    "labelRemoved": "labelsRemoved",
}


def gmail_routes(fake: FakeGoogle) -> list[tuple[str, str, str, Handler]]:
    api = _GmailApi(fake)
    base = "/gmail/v1/users/{userId}"
    return [
        ("GET", base + "/profile", "users.getProfile", api.get_profile),
        ("GET", base + "/labels", "users.labels.list", api.list_labels),
        ("GET", base + "/messages", "users.messages.list", api.list_messages),
        ("GET", base + "/messages/{id}", "users.messages.get", api.get_message),
        ("GET", base + "/history", "users.history.list", api.list_history),
    ]


class _GmailApi:
    """Gmail v1's read methods over :class:`Mailbox` state."""

    def __init__(self, fake: FakeGoogle) -> None:
        self._fake = fake

    def _mailbox(self, request: ApiRequest) -> Mailbox:
        grant = request.grant
        if not grant.scopes & _GMAIL_READ_SCOPES:
            raise ApiError(
                403,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
            )
        user = request.args["userId"]
        if user != "me" and user.lower() != grant.account.lower():
            raise ApiError(403, "forbidden", f"Delegation denied for {grant.account}")
        mailbox = self._fake.mailboxes.get(grant.account.lower())
        if mailbox is None:
            raise bad_request("Mail service not enabled", reason="failedPrecondition")
        return mailbox

    @staticmethod
    def _metadata_only(request: ApiRequest) -> bool:
        """Google applies the metadata scope's limits whenever the token carries it."""
        return GMAIL_METADATA in request.grant.scopes

    def get_profile(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        return {
            "emailAddress": mailbox.address,
            "messagesTotal": len(mailbox.messages),
            "threadsTotal": len({m.thread_id for m in mailbox.messages.values()}),
            "historyId": str(mailbox.history_id),
        }

    def list_labels(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        labels = [{"id": name, "name": name, "type": "system"} for name in SYSTEM_LABELS]
        labels += [
            {"id": label_id, "name": name, "type": "user"}
            for label_id, name in mailbox.user_labels.items()
        ]
        return {"labels": labels}

    def list_messages(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        query = request.param("q") or ""
        if query and self._metadata_only(request):
            raise ApiError(403, "forbidden", "Metadata scope does not support 'q' parameter")
        wanted = set(request.params_list("labelIds"))
        include_spam_trash = request.param("includeSpamTrash", "false") == "true"
        size = page_size(request, default=100)
        matches = _parse_query(query)
        hidden = set() if include_spam_trash else {"SPAM", "TRASH"} - wanted
        selected = sorted(
            (
                m
                for m in mailbox.messages.values()
                if wanted <= m.labels and not (hidden & m.labels) and matches(m)
            ),
            key=lambda m: (m.internal_date, m.id),
            reverse=True,
        )
        token = request.param("pageToken")
        if token:
            after = _decode_page_token(token)
            selected_after = [m for m in selected if (m.internal_date, m.id) < after]
        else:
            selected_after = selected
        page = selected_after[:size]
        result: dict[str, Any] = {"resultSizeEstimate": len(selected)}
        if page:
            result["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if len(selected_after) > size:
            last = page[-1]
            result["nextPageToken"] = _encode_page_token((last.internal_date, last.id))
        return result

    def get_message(self, request: ApiRequest) -> Mapping[str, Any]:
        fmt = request.param("format", "full") or "full"
        if fmt not in ("minimal", "metadata", "full", "raw"):
            raise bad_request(f"Invalid value at 'format' ({fmt})")
        if not request.grant.scopes & _GMAIL_READ_SCOPES:
            return self._get_current_message(request, fmt)
        mailbox = self._mailbox(request)
        if fmt in ("full", "raw") and self._metadata_only(request):
            raise ApiError(403, "forbidden", f"Metadata scope doesn't allow format {fmt.upper()}")
        stored = mailbox.messages.get(request.args["id"])
        if stored is None:
            raise not_found()
        return render_message(
            stored,
            fmt,
            request.params_list("metadataHeaders"),
            decoded=self._fake.decoded_headers,
        )

    def _get_current_message(self, request: ApiRequest, fmt: str) -> Mapping[str, Any]:
        """``messages.get`` by a Gmail add-on: a ``gmail.addons.current.message.*`` scope
        opens only the message whose own token comes in ``X-Goog-Gmail-Access-Token``;
        the metadata one allows ``minimal`` and ``metadata`` only."""
        grant = request.grant
        if not grant.scopes & _CURRENT_MESSAGE_SCOPES:
            raise ApiError(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        user = request.args["userId"]
        if user != "me" and user.lower() != grant.account.lower():
            raise ApiError(403, "forbidden", f"Delegation denied for {grant.account}")
        message_token = next(
            (v for k, v in request.headers.items() if k.lower() == MESSAGE_TOKEN_HEADER), ""
        )
        if not self._fake.message_token_opens(message_token, grant.account, request.args["id"]):
            raise ApiError(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        if fmt in ("full", "raw") and not grant.scopes & (
            _CURRENT_MESSAGE_SCOPES - {ADDONS_CURRENT_METADATA}
        ):
            raise ApiError(403, "forbidden", f"Metadata scope doesn't allow format {fmt.upper()}")
        mailbox = self._fake.mailboxes.get(grant.account.lower())
        stored = mailbox.messages.get(request.args["id"]) if mailbox is not None else None
        if stored is None:
            raise not_found()
        return render_message(
            stored,
            fmt,
            request.params_list("metadataHeaders"),
            decoded=self._fake.decoded_headers,
        )

    def list_history(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        start_text = request.param("startHistoryId")
        if not start_text or not start_text.isdigit():
            raise bad_request("Invalid startHistoryId")
        start = int(start_text)
        if start < mailbox.min_start_history_id:
            raise not_found()
        types = request.params_list("historyTypes") or list(HISTORY_TYPES)
        fields = [_HISTORY_FIELDS[t] for t in types if t in _HISTORY_FIELDS]
        label = request.param("labelId")
        after = int(_decode_page_token(request.param("pageToken") or "")[1] or start)
        records = [
            r
            for r in (_filter_record(r, fields, label) for r in mailbox.history)
            if r is not None and int(r["id"]) > after
        ]
        size = page_size(request, default=100)
        page = records[:size]
        result: dict[str, Any] = {"historyId": str(mailbox.history_id)}
        if page:
            result["history"] = page
        if len(records) > size:
            result["nextPageToken"] = _encode_page_token((0, page[-1]["id"]))
        return result


def _filter_record(
    record: dict[str, Any], fields: Sequence[str], label: str | None
) -> dict[str, Any] | None:
    kept = {}
    for name in fields:
        entries = [
            e
            for e in record.get(name, [])
            if label is None or label in e["message"].get("labelIds", [])
        ]
        if entries:
            kept[name] = entries
    if not kept:
        return None
    return {"id": record["id"], "messages": record["messages"], **kept}


def _encode_page_token(key: tuple[int, str]) -> str:
    raw = f"{key[0]}:{key[1]}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_page_token(token: str) -> tuple[int, str]:
    if not token:
        return 0, ""
    try:
        date, _, message_id = b64url_decode(token).decode("ascii").partition(":")
        return int(date), message_id
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Invalid pageToken") from None


def _parse_query(query: str) -> Callable[[StoredMessage], bool]:
    """The subset of Gmail search the connector uses: ``after:``/``before:`` (epoch
    seconds or YYYY/MM/DD), ``in:``/``label:``, each negatable with ``-``."""
    terms = [_query_term(term) for term in query.split()]
    return lambda message: all(term(message) for term in terms)


def _query_term(term: str) -> Callable[[StoredMessage], bool]:
    negate = term.startswith("-")
    name, _, value = term.lstrip("-").partition(":")

    def test(message: StoredMessage) -> bool:
        if name == "after":
            result = message.internal_date > bound
        elif name == "before":
            result = message.internal_date < bound
        else:
            result = value.upper() in message.labels
        return result != negate

    if name in ("after", "before"):
        bound = _query_time_ms(value)
    elif name not in ("in", "label"):
        raise bad_request(f"The fake does not support the search term {term!r}")
    return test


def _query_time_ms(value: str) -> int:
    if value.isdigit():
        return int(value) * 1000
    try:
        when = datetime.strptime(value, "%Y/%m/%d").replace(tzinfo=UTC)
    except ValueError:
        raise bad_request(f"Invalid date in query: {value}") from None
    return int(when.timestamp() * 1000)


def render_message(
    stored: StoredMessage,
    fmt: str,
    metadata_headers: Sequence[str] = (),
    *,
    decoded: bool = False,
) -> dict[str, Any]:
    """A ``Message`` resource in ``fmt`` as Gmail renders it.

    Google does not document whether ``payload.headers`` values keep RFC 2047
    encoded words; ``decoded`` serves them decoded (``Müller, Hans <h@x>`` for
    ``=?utf-8?q?M=C3=BCller=2C_Hans?= <h@x>``), so a client is tested on both."""
    parsed = BytesParser(policy=email.policy.compat32).parsebytes(stored.raw)
    result: dict[str, Any] = {
        "id": stored.id,
        "threadId": stored.thread_id,
        "labelIds": sorted(stored.labels),
        "snippet": _snippet(parsed),
        "sizeEstimate": len(stored.raw),
        "historyId": str(stored.history_id),
        "internalDate": str(stored.internal_date),
    }
    if fmt == "raw":
        result["raw"] = base64.urlsafe_b64encode(stored.raw).decode("ascii")
    elif fmt == "metadata":
        wanted = {h.lower() for h in metadata_headers}
        headers = [
            {"name": name, "value": _header_text(value, decoded)}
            for name, value in parsed.items()
            if not wanted or name.lower() in wanted
        ]
        result["payload"] = {
            "partId": "",
            "mimeType": parsed.get_content_type(),
            "filename": "",
            "headers": headers,
        }
    elif fmt == "full":
        result["payload"] = _payload(parsed, "", decoded)
    return result


def _payload(part: Message, part_id: str, decoded: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": [{"name": k, "value": _header_text(v, decoded)} for k, v in part.items()],
    }
    if part.is_multipart():
        children = part.get_payload()
        assert isinstance(children, list)
        out["body"] = {"size": 0}
        out["parts"] = [
            _payload(child, f"{part_id}.{i}" if part_id else str(i), decoded)
            for i, child in enumerate(children)
        ]
        return out
    data = part.get_payload(decode=True)
    content = data if isinstance(data, bytes) else b""
    body: dict[str, Any] = {"size": len(content)}
    if out["filename"]:
        body["attachmentId"] = "ANGjdJ-" + hashlib.sha1(content).hexdigest()
    elif content:
        body["data"] = base64.urlsafe_b64encode(content).decode("ascii").rstrip("=")
    out["body"] = body
    return out


def _header_text(value: object, decoded: bool = False) -> str:
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = re.sub(r"\r?\n(?=[ \t])", "", text)
    if decoded and "=?" in text:
        with contextlib.suppress(HeaderParseError, LookupError, UnicodeError, ValueError):
            text = str(make_header(decode_header(text)))
    return text


def _snippet(parsed: Message) -> str:
    for part in parsed.walk():
        if part.get_content_type() == "text/plain":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    text = data.decode(charset, "replace")
                except LookupError:
                    text = data.decode("utf-8", "replace")
                return " ".join(text.split())[:100]
    return ""
