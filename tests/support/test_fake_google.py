"""The fake Google server speaks Google's wire protocol: checked over raw HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections import deque
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.fake_google.gmail import GMAIL_METADATA, GMAIL_READONLY
from tests.support.fake_google.mailbox import Mailbox, make_email
from tests.support.fake_google.server import FakeGoogle, FaultPlan
from tests.support.paths import FIXTURES

ACCOUNT = "alice@example.com"
FIXTURE = FIXTURES / "talon" / "standard_replies" / "gmail.eml"


@pytest.fixture
def mailbox(fake_google: FakeGoogle) -> Mailbox:
    return fake_google.add_mailbox(ACCOUNT)


def request(
    fake_google: FakeGoogle,
    method: str,
    target: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(fake_google.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, target, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def get(
    fake_google: FakeGoogle, path: str, token: str | None, **params: Any
) -> tuple[int, dict[str, Any]]:
    query = urlencode(params, doseq=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _headers, body = request(fake_google, "GET", f"{path}?{query}", headers=headers)
    return status, json.loads(body)


def token_for(fake_google: FakeGoogle, scopes: tuple[str, ...] = (GMAIL_READONLY,)) -> str:
    return fake_google.issue_access_token(ACCOUNT, scopes)


def reason(payload: dict[str, Any]) -> str:
    return str(payload["error"]["errors"][0]["reason"])


MESSAGES = "/gmail/v1/users/me/messages"
HISTORY = "/gmail/v1/users/me/history"


# --------------------------------------------------------------------------- errors and auth


@pytest.mark.parametrize(
    ("path", "token", "status", "why"),
    [
        ("/gmail/v1/users/me/profile", None, 401, "authError"),
        ("/gmail/v1/users/me/profile", "ya29.unknown", 401, "authError"),
        ("/gmail/v1/users/bob@example.com/profile", "valid", 403, "forbidden"),
        ("/gmail/v1/nowhere", "valid", 404, "notFound"),
    ],
    ids=["no-token", "unknown-token", "other-user", "unknown-path"],
)
def test_errors_have_googles_shape(
    fake_google: FakeGoogle, mailbox: Mailbox, path: str, token: str | None, status: int, why: str
) -> None:
    real_token = token_for(fake_google) if token == "valid" else token
    got, payload = get(fake_google, path, real_token)
    assert got == status
    assert payload["error"]["code"] == status
    assert reason(payload) == why
    assert payload["error"]["message"]


def test_expired_access_token_is_401(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    token = fake_google.issue_access_token(ACCOUNT, [GMAIL_READONLY], lifetime=-1)
    assert get(fake_google, "/gmail/v1/users/me/profile", token)[0] == 401


def test_scope_rules(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    mid = mailbox.add_message(make_email(subject="s"))
    metadata = token_for(fake_google, (GMAIL_METADATA,))
    both = token_for(fake_google, (GMAIL_METADATA, GMAIL_READONLY))
    calendar = token_for(fake_google, ("https://www.googleapis.com/auth/calendar.readonly",))

    status, payload = get(fake_google, MESSAGES, metadata, q="in:inbox")
    assert (status, reason(payload)) == (403, "forbidden")
    assert payload["error"]["message"] == "Metadata scope does not support 'q' parameter"
    status, payload = get(fake_google, f"{MESSAGES}/{mid}", metadata)
    assert status == 403 and "format FULL" in payload["error"]["message"]
    assert get(fake_google, f"{MESSAGES}/{mid}", both, format="raw")[0] == 403
    assert get(fake_google, f"{MESSAGES}/{mid}", metadata, format="metadata")[0] == 200
    status, payload = get(fake_google, MESSAGES, calendar)
    assert (status, reason(payload)) == (403, "insufficientPermissions")


# --------------------------------------------------------------------------- messages


def test_messages_list_matches_all_labels_and_pages_newest_first(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    token = token_for(fake_google)
    ids = [
        mailbox.add_message(
            make_email(subject=str(i), date=datetime(2024, 1, 1 + i, tzinfo=UTC)),
            ["INBOX", "UNREAD"] if i % 2 else ["INBOX"],
        )
        for i in range(7)
    ]
    mailbox.add_message(make_email(subject="spam"), ["INBOX", "SPAM"])

    seen: list[str] = []
    page_token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"labelIds": ["INBOX"], "maxResults": 3}
        if page_token:
            params["pageToken"] = page_token
        status, payload = get(fake_google, MESSAGES, token, **params)
        assert status == 200
        seen += [m["id"] for m in payload.get("messages", [])]
        assert all(set(m) == {"id", "threadId"} for m in payload.get("messages", []))
        pages += 1
        page_token = payload.get("nextPageToken")
        if not page_token:
            break
    assert seen == ids[::-1]
    assert pages == 3
    unread = get(fake_google, MESSAGES, token, labelIds=["INBOX", "UNREAD"])[1]
    assert [m["id"] for m in unread["messages"]] == [ids[5], ids[3], ids[1]]
    with_spam = get(fake_google, MESSAGES, token, labelIds=["INBOX"], includeSpamTrash="true")[1]
    assert with_spam["resultSizeEstimate"] == 8


def test_messages_list_pages_stay_stable_when_mail_arrives(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    token = token_for(fake_google)
    ids = [
        mailbox.add_message(make_email(subject=str(i), date=datetime(2024, 1, 1 + i, tzinfo=UTC)))
        for i in range(6)
    ]
    first = get(fake_google, MESSAGES, token, maxResults=3)[1]
    mailbox.add_message(make_email(subject="newest", date=datetime(2024, 6, 1, tzinfo=UTC)))
    second = get(fake_google, MESSAGES, token, maxResults=3, pageToken=first["nextPageToken"])[1]
    listed = [m["id"] for m in first["messages"] + second["messages"]]
    assert listed == ids[::-1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("after:1704240000", [3, 2]),
        ("after:2024/01/03", [3, 2]),
        ("before:2024/01/03", [1, 0]),
        ("in:sent", [3]),
        ("-in:sent after:2024/01/02", [2, 1]),
    ],
    ids=["after-epoch", "after-date", "before-date", "in-label", "negated-and-combined"],
)
def test_messages_list_search_subset(
    fake_google: FakeGoogle, mailbox: Mailbox, query: str, expected: list[int]
) -> None:
    ids = [
        mailbox.add_message(
            make_email(subject=str(i), date=datetime(2024, 1, 1 + i, 12, tzinfo=UTC)),
            ["SENT"] if i == 3 else ["INBOX"],
        )
        for i in range(4)
    ]
    payload = get(fake_google, MESSAGES, token_for(fake_google), q=query)[1]
    assert [m["id"] for m in payload.get("messages", [])] == [ids[i] for i in expected]


def test_unsupported_search_is_a_loud_400(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    assert get(fake_google, MESSAGES, token_for(fake_google), q="from:carol")[0] == 400


def test_message_formats(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    raw = FIXTURE.read_bytes()
    mid = mailbox.add_message(raw, ["INBOX", "UNREAD"])
    token = token_for(fake_google)

    minimal = get(fake_google, f"{MESSAGES}/{mid}", token, format="minimal")[1]
    assert "payload" not in minimal and "raw" not in minimal
    assert minimal["labelIds"] == ["INBOX", "UNREAD"]
    assert minimal["internalDate"] == str(
        int(datetime(2012, 4, 2, 16, 21, 52, tzinfo=UTC).timestamp() * 1000)
    )

    metadata = get(
        fake_google,
        f"{MESSAGES}/{mid}",
        token,
        format="metadata",
        metadataHeaders=["Subject", "from"],
    )[1]
    assert metadata["payload"]["headers"] == [
        {"name": "Subject", "value": "Re: Test"},
        {"name": "From", "value": "Megan One <xxx@gmail.com>"},
    ]

    full = get(fake_google, f"{MESSAGES}/{mid}", token)[1]
    payload = full["payload"]
    assert payload["mimeType"] == "multipart/alternative"
    assert [p["partId"] for p in payload["parts"]] == ["0", "1"]
    text = payload["parts"][0]["body"]["data"]
    assert "=" not in text
    assert base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).startswith(b"Hello\n\nOn Mon")

    whole = get(fake_google, f"{MESSAGES}/{mid}", token, format="raw")[1]["raw"]
    assert len(whole) % 4 == 0
    assert base64.urlsafe_b64decode(whole) == raw

    assert get(fake_google, f"{MESSAGES}/ffff", token)[0] == 404


def test_replies_join_their_thread(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    first = mailbox.add_message(make_email(subject="Quote", message_id="<q1@customer.example>"))
    reply = mailbox.add_message(
        make_email(subject="Re: Quote", in_reply_to="<q1@customer.example>"), ["SENT"]
    )
    other = mailbox.add_message(make_email(subject="Unrelated"))
    threads = {mid: mailbox.messages[mid].thread_id for mid in (first, reply, other)}
    assert threads[first] == threads[reply] == first
    assert threads[other] == other


# --------------------------------------------------------------------------- history


def test_history_pages_filters_and_expires(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    token = token_for(fake_google)
    start = mailbox.history_id
    a = mailbox.add_message(make_email(subject="a"))
    mailbox.modify(a, add=["STARRED"], remove=["INBOX"])
    mailbox.delete_message(a)
    b = mailbox.add_message(make_email(subject="b"))

    payload = get(fake_google, HISTORY, token, startHistoryId=start)[1]
    kinds = [sorted(set(r) - {"id", "messages"}) for r in payload["history"]]
    assert kinds == [
        ["messagesAdded"],
        ["labelsAdded", "labelsRemoved"],
        ["messagesDeleted"],
        ["messagesAdded"],
    ]
    ids = [int(r["id"]) for r in payload["history"]]
    assert ids == sorted(ids) and ids[0] > start
    assert payload["historyId"] == str(mailbox.history_id)
    removed = payload["history"][1]["labelsRemoved"][0]
    assert removed["labelIds"] == ["INBOX"] and removed["message"]["labelIds"] == ["STARRED"]

    added_only = get(
        fake_google, HISTORY, token, startHistoryId=start, historyTypes="messageAdded"
    )[1]
    assert [r["messagesAdded"][0]["message"]["id"] for r in added_only["history"]] == [a, b]

    page = get(fake_google, HISTORY, token, startHistoryId=start, maxResults=3)[1]
    rest = get(
        fake_google,
        HISTORY,
        token,
        startHistoryId=start,
        maxResults=3,
        pageToken=page["nextPageToken"],
    )[1]
    assert [r["id"] for r in page["history"] + rest["history"]] == [str(i) for i in ids]
    assert "nextPageToken" not in rest

    latest = get(fake_google, HISTORY, token, startHistoryId=mailbox.history_id)[1]
    assert "history" not in latest

    mailbox.expire_history()
    status, error = get(fake_google, HISTORY, token, startHistoryId=start)
    assert (status, reason(error), error["error"]["status"]) == (404, "notFound", "NOT_FOUND")
    assert get(fake_google, HISTORY, token, startHistoryId=mailbox.history_id)[0] == 200


# --------------------------------------------------------------------------- batch


def batch_body(parts: list[str], newline: str) -> bytes:
    chunks = []
    for i, target in enumerate(parts):
        chunks.append(
            f"--BOUNDARY{newline}Content-Type: application/http{newline}"
            f"Content-Transfer-Encoding: binary{newline}"
            f"Content-ID: <a1b2 + {i}>{newline}{newline}"
            f"GET {target} HTTP/1.1{newline}Host: gmail.googleapis.com{newline}"
            f"authorization: Bearer TOKEN{newline}{newline}"
        )
    return ("".join(chunks) + f"--BOUNDARY--{newline}").encode()


@pytest.mark.parametrize(
    ("path", "newline"),
    [
        ("/batch", "\n"),
        ("/batch", "\r\n"),
        ("/batch/gmail/v1", "\n"),
        ("/batch/calendar/v3", "\r\n"),
    ],
    ids=["batch-lf", "batch-crlf", "gmail-batch-path", "calendar-batch-path"],
)
def test_batch_endpoint(fake_google: FakeGoogle, mailbox: Mailbox, path: str, newline: str) -> None:
    mid = mailbox.add_message(make_email(subject="in a batch"))
    token = token_for(fake_google)
    body = batch_body(
        [f"{MESSAGES}/{mid}?format=minimal&alt=json", f"{MESSAGES}/nope?format=minimal"], newline
    ).replace(b"TOKEN", token.encode())
    status, headers, answer = request(
        fake_google,
        "POST",
        path,
        body=body,
        headers={"Content-Type": 'multipart/mixed; boundary="BOUNDARY"'},
    )
    assert status == 200
    boundary = headers["Content-Type"].split("boundary=")[1]
    parts = answer.decode().split(f"--{boundary}")[1:-1]
    assert len(parts) == 2
    head, inner = parts[0].split("\r\n\r\n", 1)
    assert "Content-ID: <response-a1b2 + 0>" in head
    status_line, rest = inner.split("\r\n", 1)
    assert status_line == "HTTP/1.1 200 OK"
    assert json.loads(rest.split("\r\n\r\n", 1)[1])["id"] == mid
    assert "HTTP/1.1 404 Not Found" in parts[1]
    assert [c.in_batch for c in fake_google.log] == [True, True, False]
    assert fake_google.round_trips == 1
    assert fake_google.units["users.messages.get"] == 10


def test_batch_of_more_than_100_is_refused(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    body = batch_body([f"{MESSAGES}/x"] * 101, "\n")
    status, _headers, answer = request(
        fake_google,
        "POST",
        "/batch",
        body=body,
        headers={"Content-Type": "multipart/mixed; boundary=BOUNDARY"},
    )
    assert status == 400
    assert json.loads(answer)["error"]["code"] == 400


# --------------------------------------------------------------------------- faults


def test_fault_rate_is_seeded_and_covers_batch_parts(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    def statuses(seed: int) -> list[int]:
        fake_google.faults = FaultPlan(rate=0.5, statuses=(429, 500, 503), seed=seed)
        return [get(fake_google, "/gmail/v1/users/me/profile", token)[0] for _ in range(40)]

    token = token_for(fake_google)
    first = statuses(1)
    assert first == statuses(1)
    assert set(first) == {200, 429, 500, 503}
    fake_google.faults = FaultPlan(forced=deque([503]), retry_after=4)
    status, headers, body = request(
        fake_google,
        "GET",
        "/gmail/v1/users/me/profile",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 503 and headers["Retry-After"] == "4"
    assert reason(json.loads(body)) == "backendError"


def test_faults_can_target_methods(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    token = token_for(fake_google)
    fake_google.faults = FaultPlan(
        rate=1.0, statuses=(429,), methods=frozenset({"users.history.list"})
    )
    assert get(fake_google, "/gmail/v1/users/me/profile", token)[0] == 200
    status, payload = get(fake_google, HISTORY, token, startHistoryId=mailbox.history_id)
    assert (status, reason(payload)) == (429, "rateLimitExceeded")
    assert payload["error"]["errors"][0]["domain"] == "usageLimits"


def test_dropped_connection_gets_no_answer(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    fake_google.faults.drop_connections = 1
    with pytest.raises(http.client.RemoteDisconnected):
        request(fake_google, "GET", "/gmail/v1/users/me/profile")
    assert request(fake_google, "GET", "/gmail/v1/users/me/profile")[0] == 401


# --------------------------------------------------------------------------- token endpoint


def post_token(fake_google: FakeGoogle, **form: str) -> tuple[int, dict[str, Any]]:
    status, _headers, body = request(
        fake_google,
        "POST",
        "/token",
        body=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status, json.loads(body)


def test_refresh_grant(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    refresh = fake_google.issue_refresh_token(ACCOUNT, [GMAIL_METADATA])
    client = {"client_id": "test-client", "client_secret": "test-secret"}
    status, payload = post_token(
        fake_google, grant_type="refresh_token", refresh_token=refresh, **client
    )
    assert status == 200 and payload["token_type"] == "Bearer"
    assert payload["scope"] == GMAIL_METADATA
    assert get(fake_google, "/gmail/v1/users/me/profile", payload["access_token"])[0] == 200

    wrong_client = {"client_id": "test-client", "client_secret": "nope"}
    status, payload = post_token(
        fake_google, grant_type="refresh_token", refresh_token=refresh, **wrong_client
    )
    assert (status, payload["error"]) == (401, "invalid_client")
    status, payload = post_token(
        fake_google,
        grant_type="refresh_token",
        refresh_token=refresh,
        scope=GMAIL_READONLY,
        **client,
    )
    assert (status, payload["error"]) == (400, "invalid_scope")

    fake_google.revoke(refresh)
    status, payload = post_token(
        fake_google, grant_type="refresh_token", refresh_token=refresh, **client
    )
    assert (status, payload) == (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )


def jwt(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    def encode(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = encode(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = encode(json.dumps(claims).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{encode(signature)}"


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({}, 200, None),
        ({"key": "other"}, 400, "invalid_grant"),
        ({"sub": "nobody@example.com"}, 400, "invalid_grant"),
        ({"scope": GMAIL_READONLY}, 401, "unauthorized_client"),
        ({"exp_in": 7200}, 400, "invalid_grant"),
        ({"iss": "stranger@x.iam.gserviceaccount.com"}, 401, "invalid_client"),
    ],
    ids=[
        "valid",
        "wrong-key",
        "unknown-subject",
        "scope-not-delegated",
        "too-long-lived",
        "unknown-service-account",
    ],
)
def test_jwt_bearer_grant(
    fake_google: FakeGoogle,
    mailbox: Mailbox,
    keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
    change: dict[str, Any],
    status: int,
    error: str | None,
) -> None:
    own, other = keys
    email_address = "crm-sync@test-project.iam.gserviceaccount.com"
    fake_google.add_service_account(email_address, own.public_key(), [GMAIL_METADATA])
    now = int(time.time())
    claims = {
        "iss": change.get("iss", email_address),
        "scope": change.get("scope", GMAIL_METADATA),
        "aud": "https://oauth2.googleapis.com/token",
        "sub": change.get("sub", ACCOUNT),
        "iat": now,
        "exp": now + change.get("exp_in", 3600),
    }
    assertion = jwt(other if change.get("key") else own, claims)
    got, payload = post_token(
        fake_google, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer", assertion=assertion
    )
    assert got == status
    assert payload.get("error") == error
    if status == 200:
        profile = get(fake_google, "/gmail/v1/users/me/profile", payload["access_token"])[1]
        assert profile["emailAddress"] == ACCOUNT


# --------------------------------------------------------------------------- routes and log


def test_routes_can_be_added_for_other_apis(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    def list_events(req: Any) -> dict[str, Any]:
        return {"items": [{"id": "e1", "calendar": req.args["calendarId"]}]}

    fake_google.add_route(
        "GET", "/calendar/v3/calendars/{calendarId}/events", "events.list", list_events, units=1
    )
    token = token_for(fake_google)
    status, payload = get(fake_google, "/calendar/v3/calendars/primary/events", token)
    assert (status, payload["items"][0]["calendar"]) == (200, "primary")
    body = batch_body(["/calendar/v3/calendars/primary/events"], "\r\n").replace(
        b"TOKEN", token.encode()
    )
    status, _headers, answer = request(
        fake_google,
        "POST",
        "/batch/calendar/v3",
        body=body,
        headers={"Content-Type": "multipart/mixed; boundary=BOUNDARY"},
    )
    assert status == 200 and b'"e1"' in answer
    assert fake_google.calls["events.list"] == 2 and fake_google.units["events.list"] == 2


def test_every_request_is_logged_with_its_parameters(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    mid = mailbox.add_message(make_email(subject="logged"))
    token = token_for(fake_google, (GMAIL_METADATA,))
    get(fake_google, f"{MESSAGES}/{mid}", token, format="metadata", metadataHeaders=["From", "To"])
    call = fake_google.log[-1]
    assert call.api_method == "users.messages.get"
    assert call.format == "metadata"
    assert call.params["metadataHeaders"] == ("From", "To")
    assert call.account == ACCOUNT and call.status == 200 and not call.in_batch
    assert fake_google.api_calls("users.messages.get") == [call]


def test_labels_and_profile(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    label = mailbox.create_label("Private")
    message = EmailMessage()
    message["Subject"] = "x"
    mailbox.add_message(message.as_bytes(), ["INBOX", label])
    token = token_for(fake_google, (GMAIL_METADATA,))
    labels = get(fake_google, "/gmail/v1/users/me/labels", token)[1]["labels"]
    assert {"id": label, "name": "Private", "type": "user"} in labels
    profile = get(fake_google, "/gmail/v1/users/alice@example.com/profile", token)[1]
    assert profile == {
        "emailAddress": ACCOUNT,
        "messagesTotal": 1,
        "threadsTotal": 1,
        "historyId": str(mailbox.history_id),
    }
    assert fake_google.units == {"users.labels.list": 1, "users.getProfile": 1}
