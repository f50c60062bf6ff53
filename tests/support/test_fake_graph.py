"""The fake Microsoft Graph server speaks Graph's wire protocol: pinned with independent clients.

MSAL Python acquires tokens from it (client credentials; device code, then a
refresh); plain httpx walks delta rounds, batches, throttling and errors.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msal  # type: ignore[import-untyped]
import pytest

from tests.support.fake_graph.calendar import Attendee, Recurrence
from tests.support.fake_graph.mail import Mailbox
from tests.support.fake_graph.server import FakeGraph
from tests.support.mailbuilder import message

ALICE = "alice@contoso.com"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
APP, SECRET = "11111111-aaaa-bbbb-cccc-000000000001", "app-secret"
BASIC_APP = "11111111-aaaa-bbbb-cccc-000000000002"
PUBLIC_APP = "11111111-aaaa-bbbb-cccc-000000000003"


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(seed=7) as server:
        server.add_app(
            APP,
            secret=SECRET,
            app_permissions={"Mail.Read", "User.Read.All", "Calendars.Read"},
        )
        server.add_app(BASIC_APP, secret=SECRET, app_permissions={"Mail.ReadBasic.All"})
        server.add_app(PUBLIC_APP, delegated_permissions={"User.Read", "Mail.Read"})
        yield server


@pytest.fixture(autouse=True)
def _requests_honours_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's
    ``verify`` (psf/requests#3829), so MSAL's ``verify=fake.ca_file`` needs them unset."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def alice(fake: FakeGraph) -> Mailbox:
    return fake.add_user(ALICE, "Alice Liddell", given_name="Alice", surname="Liddell")


@pytest.fixture
def client(fake: FakeGraph) -> Iterator[httpx.Client]:
    with httpx.Client(verify=fake.client_ssl_context(), timeout=10) as http:
        yield http


def app_token(client: httpx.Client, fake: FakeGraph, client_id: str = APP) -> str:
    answer = client.post(
        f"{fake.authority}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": SECRET,
            "scope": GRAPH_DEFAULT,
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def mail(n: int, **extra: Any) -> bytes:
    return message(
        sender=f"Sender {n} <sender{n}@example.org>",
        to=[ALICE],
        cc=["Carol <carol@example.net>"],
        subject=f"Message {n}",
        body=f"Body of message {n}.",
        message_id=f"<m{n}@example.org>",
        date=datetime(2026, 3, 2, 9, n, tzinfo=UTC),
        **extra,
    )


def walk(client: httpx.Client, url: str, headers: dict[str, str]) -> tuple[list[list[Any]], str]:
    """Every page of a delta round, and the round's deltaLink."""
    pages: list[list[Any]] = []
    while True:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body["value"])
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        return pages, str(body["@odata.deltaLink"])


# --------------------------------------------------------------------------- identity with MSAL


def test_msal_client_credentials_token_works_on_graph(fake: FakeGraph, alice: Mailbox) -> None:
    app = msal.ConfidentialClientApplication(
        APP,
        client_credential=SECRET,
        authority=fake.authority,
        instance_discovery=False,
        verify=fake.ca_file,
    )
    result = app.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"

    with httpx.Client(verify=fake.client_ssl_context()) as http:
        users = http.get(
            f"{fake.graph_url}/users", headers={"Authorization": f"Bearer {result['access_token']}"}
        )
    assert users.status_code == 200
    assert [u["userPrincipalName"] for u in users.json()["value"]] == [ALICE]
    endpoints = [c.endpoint for c in fake.log]
    assert endpoints == ["identity.openid_configuration", "identity.token", "users.list"]
    assert fake.calls("users.list")[0].client_id == APP


def test_msal_wrong_secret_and_wrong_scope_are_refused(fake: FakeGraph) -> None:
    bad = msal.ConfidentialClientApplication(
        APP,
        client_credential="nope",
        authority=fake.authority,
        instance_discovery=False,
        verify=fake.ca_file,
    )
    result = bad.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]

    good = msal.ConfidentialClientApplication(
        APP,
        client_credential=SECRET,
        authority=fake.authority,
        instance_discovery=False,
        verify=fake.ca_file,
    )
    result = good.acquire_token_for_client(scopes=["https://graph.microsoft.com/Mail.Read"])
    assert result["error"] == "invalid_scope"


def test_msal_instance_discovery_can_point_at_the_fake(fake: FakeGraph) -> None:
    app = msal.ConfidentialClientApplication(
        APP,
        client_credential=SECRET,
        authority=fake.authority,
        instance_discovery=f"{fake.url}/common/discovery/instance",
        verify=fake.ca_file,
    )
    assert "access_token" in app.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    discovery = fake.calls("identity.instance_discovery")
    assert len(discovery) == 1
    assert (
        discovery[0]
        .params["authorization_endpoint"]
        .endswith(f"/{fake.tenant_id}/oauth2/v2.0/authorize")
    )


def test_msal_device_flow_refresh_and_revocation(
    fake: FakeGraph, alice: Mailbox, client: httpx.Client
) -> None:
    app = msal.PublicClientApplication(
        PUBLIC_APP, authority=fake.authority, instance_discovery=False, verify=fake.ca_file
    )
    flow = app.initiate_device_flow(scopes=["https://graph.microsoft.com/Mail.Read"])
    assert flow["user_code"] in flow["message"]

    pending = client.post(
        f"{fake.authority}/oauth2/v2.0/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": PUBLIC_APP,
            "device_code": flow["device_code"],
        },
    )
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    fake.approve_device_code(ALICE, flow["user_code"])
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == ALICE
    assert "Mail.Read" in result["scope"]

    me = client.get(
        f"{fake.graph_url}/me/mailFolders/inbox",
        headers={"Authorization": f"Bearer {result['access_token']}"},
    )
    assert me.status_code == 200
    assert me.json()["displayName"] == "Inbox"

    [account] = app.get_accounts()
    refreshed = app.acquire_token_silent(
        ["https://graph.microsoft.com/Mail.Read"], account=account, force_refresh=True
    )
    assert refreshed is not None and "access_token" in refreshed
    assert refreshed["access_token"] != result["access_token"]

    fake.revoke(ALICE)
    denied = client.get(
        f"{fake.graph_url}/me/mailFolders/inbox",
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
    )
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "InvalidAuthenticationToken"
    again = app.acquire_token_silent_with_error(
        ["https://graph.microsoft.com/Mail.Read"], account=account, force_refresh=True
    )
    assert again is not None and again["error"] == "invalid_grant"


# --------------------------------------------------------------------------- delta over httpx


def test_message_delta_round_then_changes_then_expiry(
    fake: FakeGraph, alice: Mailbox, client: httpx.Client
) -> None:
    messages = [alice.deliver(mail(n)) for n in range(5)]
    alice.deliver(mail(9), folder="sentitems")
    token = app_token(client, fake)
    headers = {"Authorization": f"Bearer {token}", "Prefer": "odata.maxpagesize=2"}
    start = (
        f"{fake.graph_url}/users/{ALICE}/mailFolders/inbox/messages/delta?$select=subject,isRead"
    )

    pages, delta_link = walk(client, start, headers)
    assert [len(page) for page in pages] == [2, 2, 1]
    items = [item for page in pages for item in page]
    assert {item["subject"] for item in items} == {f"Message {n}" for n in range(5)}
    for item in items:
        assert set(item) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"}
    skip_calls = fake.calls("messages.delta")
    assert skip_calls[0].select == ["subject", "isRead"]
    assert all(c.prefer == "odata.maxpagesize=2" for c in skip_calls)
    assert "skiptoken" in skip_calls[1].params

    alice.mark_read(messages[0].rest_id)
    alice.delete(messages[1].rest_id)
    old_id = messages[2].rest_id
    alice.move(old_id, "archive")
    new = alice.deliver(mail(7))

    pages, second_link = walk(client, delta_link, headers)
    changes = [item for page in pages for item in page]
    by_id = {item["id"]: item for item in changes}
    assert set(by_id) == {messages[0].rest_id, messages[1].rest_id, old_id, new.rest_id}
    assert by_id[messages[0].rest_id]["isRead"] is True
    assert by_id[messages[1].rest_id]["@removed"] == {"reason": "deleted"}
    assert by_id[old_id]["@removed"] == {"reason": "deleted"}
    assert by_id[new.rest_id]["subject"] == "Message 7"
    assert set(by_id[new.rest_id]) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"}

    nothing = client.get(second_link, headers=headers).json()
    assert nothing["value"] == [] and "@odata.deltaLink" in nothing

    archive = client.get(
        f"{fake.graph_url}/users/{ALICE}/mailFolders/archive/messages/delta", headers=headers
    ).json()
    assert [m["id"] for m in archive["value"]] == [messages[2].rest_id]
    assert messages[2].rest_id != old_id  # Outlook ids change on a move

    fake.expire_delta_tokens(ALICE)
    gone = client.get(second_link, headers=headers)
    assert gone.status_code == 410
    error = gone.json()["error"]
    assert error["code"] == "syncStateNotFound"
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])


def test_change_type_filter_and_resync_location(
    fake: FakeGraph, alice: Mailbox, client: httpx.Client
) -> None:
    first = alice.deliver(mail(1))
    headers = {"Authorization": f"Bearer {app_token(client, fake)}"}
    url = f"{fake.graph_url}/users/{ALICE}/mailFolders/inbox/messages/delta?changeType=created"
    _, delta_link = walk(client, url, headers)
    alice.mark_read(first.rest_id)
    added = alice.deliver(mail(2))
    pages, _ = walk(client, delta_link, headers)
    assert [item["id"] for page in pages for item in page] == [added.rest_id]

    fake.expire_delta_tokens(code="resyncRequired", location=True)
    reset = client.get(delta_link, headers=headers)
    assert reset.status_code == 410
    assert reset.json()["error"]["code"] == "resyncRequired"
    restart = reset.headers["Location"]
    assert "$deltatoken=" in restart and "changeType=created" in restart
    pages, _ = walk(client, restart, headers)
    assert {item["id"] for page in pages for item in page} == {first.rest_id, added.rest_id}


def test_immutable_ids_survive_a_move(
    fake: FakeGraph, alice: Mailbox, client: httpx.Client
) -> None:
    sent = alice.deliver(mail(1))
    headers = {
        "Authorization": f"Bearer {app_token(client, fake)}",
        "Prefer": 'IdType="ImmutableId"',
    }
    before = client.get(f"{fake.graph_url}/users/{ALICE}/messages/{sent.rest_id}", headers=headers)
    assert before.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    alice.move(sent.rest_id, "archive")
    after = client.get(
        f"{fake.graph_url}/users/{ALICE}/messages/{before.json()['id']}", headers=headers
    )
    assert after.status_code == 200
    assert after.json()["id"] == before.json()["id"] == sent.immutable_id


# --------------------------------------------------------------------------- messages


def test_message_properties_from_raw_and_mime_value(
    fake: FakeGraph, alice: Mailbox, client: httpx.Client
) -> None:
    raw = mail(3, html="<p>Body of <b>message</b> 3.</p>")
    sent = alice.deliver(raw)
    headers = {"Authorization": f"Bearer {app_token(client, fake)}"}
    got = client.get(f"{fake.graph_url}/users/{ALICE}/messages/{sent.rest_id}", headers=headers)
    body = got.json()
    assert body["subject"] == "Message 3"
    assert body["internetMessageId"] == "<m3@example.org>"
    assert body["from"] == {"emailAddress": {"name": "Sender 3", "address": "sender3@example.org"}}
    assert body["ccRecipients"] == [
        {"emailAddress": {"name": "Carol", "address": "carol@example.net"}}
    ]
    assert body["sentDateTime"] == "2026-03-02T09:03:00Z"
    assert body["body"]["contentType"] == "html"
    assert body["bodyPreview"] == "Body of message 3."
    assert body["parentFolderId"] == alice.folder("inbox").id
    assert "internetMessageHeaders" not in body  # only when $select names it

    picked = client.get(
        f"{fake.graph_url}/users/{ALICE}/messages/{sent.rest_id}",
        params={"$select": "internetMessageHeaders"},
        headers={**headers, "Prefer": 'outlook.body-content-type="text"'},
    ).json()
    assert {"name": "Message-ID", "value": "<m3@example.org>"} in picked["internetMessageHeaders"]

    value = client.get(
        f"{fake.graph_url}/users/{ALICE}/messages/{sent.rest_id}/$value", headers=headers
    )
    assert value.status_code == 200
    assert value.content == raw

    unknown = client.get(
        f"{fake.graph_url}/users/{ALICE}/messages/{sent.rest_id}",
        params={"$select": "subject,nonsense"},
        headers=headers,
    )
    assert unknown.status_code == 400


def test_read_basic_gets_no_bodies(fake: FakeGraph, alice: Mailbox, client: httpx.Client) -> None:
    sent = alice.deliver(mail(1))
    headers = {"Authorization": f"Bearer {app_token(client, fake, BASIC_APP)}"}
    base = f"{fake.graph_url}/users/{ALICE}"

    full = client.get(f"{base}/messages/{sent.rest_id}", headers=headers).json()
    assert "subject" in full and "body" not in full and "bodyPreview" not in full
    asked = client.get(
        f"{base}/messages/{sent.rest_id}", params={"$select": "subject,body"}, headers=headers
    ).json()
    assert set(asked) == {"@odata.context", "@odata.etag", "id", "subject"}
    delta = client.get(f"{base}/mailFolders/inbox/messages/delta", headers=headers).json()
    assert "body" not in delta["value"][0]

    mime = client.get(f"{base}/messages/{sent.rest_id}/$value", headers=headers)
    assert mime.status_code == 403
    assert mime.json()["error"]["code"] == "ErrorAccessDenied"

    fake.read_basic_body = "deny"
    denied = client.get(
        f"{base}/messages/{sent.rest_id}", params={"$select": "body"}, headers=headers
    )
    assert denied.status_code == 403

    nothing = fake.add_app("no-mail", secret=SECRET, app_permissions={"User.Read.All"})
    no_mail = client.get(
        f"{base}/mailFolders",
        headers={"Authorization": f"Bearer {app_token(client, fake, nothing.client_id)}"},
    )
    assert no_mail.status_code == 403


def test_folders_users_and_auth_errors(
    fake: FakeGraph, alice: Mailbox, client: httpx.Client
) -> None:
    fake.add_user("bob@contoso.com", "Bob")
    fake.add_user("carol@contoso.com", "Carol")
    custom = alice.add_folder("Customers", parent="inbox")
    headers = {"Authorization": f"Bearer {app_token(client, fake)}"}

    folders = client.get(f"{fake.graph_url}/users/{ALICE}/mailFolders", headers=headers).json()
    names = {f["displayName"] for f in folders["value"]}
    assert {"Inbox", "Sent Items", "Deleted Items", "Drafts", "Junk Email"} <= names
    children = client.get(
        f"{fake.graph_url}/users/{ALICE}/mailFolders/inbox/childFolders", headers=headers
    ).json()
    assert [f["id"] for f in children["value"]] == [custom.id]

    first = client.get(
        f"{fake.graph_url}/users", params={"$top": "2", "$select": "displayName"}, headers=headers
    ).json()
    assert first["value"] == [{"displayName": "Alice Liddell"}, {"displayName": "Bob"}]
    rest = client.get(first["@odata.nextLink"], headers=headers).json()
    assert rest["value"] == [{"displayName": "Carol"}] and "@odata.nextLink" not in rest

    me = client.get(f"{fake.graph_url}/me", headers=headers)
    assert me.status_code == 400
    missing = client.get(f"{fake.graph_url}/users")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "InvalidAuthenticationToken"
    nobody = client.get(f"{fake.graph_url}/users/nobody@contoso.com/mailFolders", headers=headers)
    assert nobody.status_code == 404


# ------------------------------------------------------------------------ batching, throttling


def test_json_batch(fake: FakeGraph, alice: Mailbox, client: httpx.Client) -> None:
    raw = mail(1)
    sent = alice.deliver(raw)
    headers = {"Authorization": f"Bearer {app_token(client, fake)}"}
    requests = [
        {
            "id": "1",
            "method": "GET",
            "url": f"/users/{ALICE}/messages/{sent.rest_id}?$select=subject",
        },
        {"id": "2", "method": "GET", "url": f"/users/{ALICE}/messages/{sent.rest_id}/$value"},
        {"id": "3", "method": "GET", "url": f"/users/{ALICE}/messages/missing"},
        {"id": "4", "method": "GET", "url": "/users?$select=mail", "dependsOn": ["3"]},
        {
            "id": "5",
            "method": "GET",
            "url": f"/users/{ALICE}/mailFolders/inbox/messages/delta",
            "headers": {"Prefer": "odata.maxpagesize=1"},
        },
    ]
    answer = client.post(f"{fake.graph_url}/$batch", json={"requests": requests}, headers=headers)
    assert answer.status_code == 200
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["subject"] == "Message 1"
    assert base64.b64decode(by_id["2"]["body"]) == raw
    assert by_id["3"]["status"] == 404
    assert by_id["3"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert by_id["4"]["status"] == 424
    assert by_id["5"]["status"] == 200 and len(by_id["5"]["body"]["value"]) == 1
    parts = fake.calls(in_batch=True)
    assert len(parts) == 5 and fake.round_trips == 2  # the token request and the batch
    assert fake.calls("messages.delta")[0].prefer == "odata.maxpagesize=1"

    too_many = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]
    refused = client.post(f"{fake.graph_url}/$batch", json={"requests": too_many}, headers=headers)
    assert refused.status_code == 400
    twice = [
        {"id": "a", "method": "GET", "url": "/users"},
        {"id": "A", "method": "GET", "url": "/users"},
    ]
    assert (
        client.post(
            f"{fake.graph_url}/$batch", json={"requests": twice}, headers=headers
        ).status_code
        == 400
    )

    fake.fail_next(1, 429, retry_after=7)
    throttled = client.post(
        f"{fake.graph_url}/$batch", json={"requests": requests[:2]}, headers=headers
    ).json()["responses"]
    statuses = {r["id"]: (r["status"], r["headers"].get("Retry-After")) for r in throttled}
    assert statuses == {"1": (429, "7"), "2": (200, None)}


def test_throttling_with_retry_after(fake: FakeGraph, alice: Mailbox, client: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {app_token(client, fake)}", "client-request-id": "abc"}
    url = f"{fake.graph_url}/users/{ALICE}/mailFolders/inbox"
    fake.fail_next(1, 429, retry_after=3)
    fake.fail_next(1, 503)
    first = client.get(url, headers=headers)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "3"
    assert first.json()["error"]["code"] == "activityLimitReached"
    assert first.json()["error"]["innerError"]["client-request-id"] == "abc"
    second = client.get(url, headers=headers)
    assert second.status_code == 503 and second.headers["Retry-After"] == "1"
    assert client.get(url, headers=headers).status_code == 200

    def pattern(seed: int) -> list[int]:
        fake.throttle(0.5, seed=seed, retry_after=2)
        return [client.get(url, headers=headers).status_code for _ in range(12)]

    once, twice = pattern(3), pattern(3)
    assert once == twice
    assert {429, 503, 200} >= set(once) and 200 in once and len(set(once)) > 1
    assert fake.calls("mailFolders.get", status=429)


# --------------------------------------------------------------------------- calendar


def test_calendar_view_delta_with_exception_and_cancellations(
    fake: FakeGraph, alice: Mailbox, client: httpx.Client
) -> None:
    calendar = alice.calendar
    first = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    series = calendar.add_event(
        "Weekly sync",
        first,
        first + timedelta(minutes=30),
        attendees=[
            Attendee("bob@example.org", "Bob", "accepted"),
            Attendee("carol@example.net", "Carol"),
        ],
        recurrence=Recurrence("weekly", count=4),
        body="<p>Agenda</p>",
    )
    single = calendar.add_event(
        "Lunch", first + timedelta(days=1), first + timedelta(days=1, hours=1)
    )
    week = timedelta(weeks=1)
    moved_id = calendar.modify_occurrence(
        series.id,
        first + week,
        start=first + week + timedelta(hours=1),
        subject="Weekly sync (moved)",
    )
    calendar.cancel_occurrence(series.id, first + 2 * week)

    headers = {
        "Authorization": f"Bearer {app_token(client, fake)}",
        "Prefer": "odata.maxpagesize=2",
    }
    start = (
        f"{fake.graph_url}/users/{ALICE}/calendarView/delta"
        "?startDateTime=2026-03-01T00:00:00Z&endDateTime=2026-04-01T00:00:00Z"
    )
    pages, delta_link = walk(client, start, headers)
    events = [e for page in pages for e in page]
    assert [e["type"] for e in events] == [
        "occurrence",
        "singleInstance",
        "exception",
        "occurrence",
    ]
    assert [e["subject"] for e in events] == [
        "Weekly sync",
        "Lunch",
        "Weekly sync (moved)",
        "Weekly sync",
    ]
    occ1, lunch, moved, occ4 = events
    assert lunch["id"] == single.id and lunch["seriesMasterId"] is None
    assert moved["id"] == moved_id and moved["seriesMasterId"] == series.id
    assert moved["originalStart"] == "2026-03-09T15:00:00Z"
    assert moved["start"] == {"dateTime": "2026-03-09T16:00:00.0000000", "timeZone": "UTC"}
    assert len({occ1["iCalUId"], moved["iCalUId"], occ4["iCalUId"]}) == 3
    assert [a["status"]["response"] for a in occ1["attendees"]] == ["accepted", "none"]
    assert occ1["isCancelled"] is False

    calendar.cancel_occurrence(series.id, first + 3 * week)
    calendar.cancel_occurrence(series.id, first, keep=True)
    pages, _ = walk(client, delta_link, headers)
    changes = {e["id"]: e for page in pages for e in page}
    assert set(changes) == {occ1["id"], occ4["id"]}
    assert changes[occ4["id"]]["@removed"] == {"reason": "deleted"}
    assert changes[occ1["id"]]["isCancelled"] is True

    no_window = client.get(f"{fake.graph_url}/users/{ALICE}/calendarView/delta", headers=headers)
    assert no_window.status_code == 400


def test_device_code_declined_and_unknown(fake: FakeGraph, client: httpx.Client) -> None:
    start = client.post(
        f"{fake.authority}/oauth2/v2.0/devicecode",
        data={"client_id": PUBLIC_APP, "scope": "Mail.Read openid offline_access"},
    ).json()
    assert {"device_code", "user_code", "verification_uri", "expires_in", "interval"} <= set(start)
    fake.decline_device_code(start["user_code"])

    def poll(code: str) -> str:
        answer = client.post(
            f"{fake.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "client_id": PUBLIC_APP,
                "device_code": code,
            },
        )
        assert answer.status_code == 400
        return str(answer.json()["error"])

    assert poll(start["device_code"]) == "authorization_declined"
    assert poll("no-such-code") == "bad_verification_code"
    wrong_tenant = client.get(f"{fake.url}/not-a-tenant/v2.0/.well-known/openid-configuration")
    assert wrong_tenant.status_code == 400
