"""The Gmail add-on's endpoints, posted real event objects over HTTP, on both databases.

The fake Google issues the ID tokens (signed by its own key, published at its
own certs URL, which the app is configured to trust), the user's OAuth token
and the open message's own token, and serves the message's headers from its
Gmail API. Every card answered is checked against ``addon_card_schema.json``,
written from Google's card reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import Engine, delete, insert, select, update

from storage.db import make_engine
from storage.models import AuditLog, Conflict, Contact, ContactEmail, Interaction, User
from tests.support.fake_google.mailbox import make_email
from tests.support.fake_google.server import FakeGoogle
from tests.support.web import (
    HOSTILE,
    Team,
    WebServer,
    seeded_database,
    sign_in,
    team_connectors,
)

SCHEMA = json.loads((Path(__file__).parent / "addon_card_schema.json").read_text())
GOOGLE = "https://accounts.google.com"
ROBOT = "service-1234@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
SCOPES = (
    "https://www.googleapis.com/auth/gmail.addons.execute",
    "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
    "https://www.googleapis.com/auth/userinfo.email",
)
DANA = "Dana Whitfield <dana@acme.example>"


# -- the JSON Schema check


def schema_errors(value: Any, schema: Mapping[str, Any] = SCHEMA) -> list[str]:
    """What in ``value`` breaks ``schema`` (draft 2020-12), one line per error."""
    return [f"{e.json_path}: {e.message}" for e in Draft202012Validator(schema).iter_errors(value)]


def test_the_schema_check_catches_what_google_would_refuse() -> None:
    good = {"renderActions": {"action": {"notification": {"text": "ok"}}}}
    assert schema_errors(good, SCHEMA) == []
    card = {"sections": [{"widgets": [{"textParagraph": {"text": "x"}, "divider": {}}]}]}
    bad = {"renderActions": {"action": {"navigations": [{"pushCard": card, "pop": True}]}}}
    assert schema_errors(bad, SCHEMA)
    button = {"text": "b", "onClick": {"action": {"function": "create_contact"}}}
    unposted = {"sections": [{"widgets": [{"buttonList": {"buttons": [button]}}]}]}
    wrong = {"renderActions": {"action": {"navigations": [{"pushCard": unposted}]}}}
    assert any("function" in e for e in schema_errors(wrong, SCHEMA))


# -- the running app and the fake Google


@dataclass(frozen=True)
class Addon:
    url: str
    team: Team
    google: FakeGoogle
    engine: Engine
    messages: dict[str, str]
    """Gmail ids of the messages in the fake mailboxes, by a short name."""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def addon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Addon]:
    folder = tmp_path_factory.mktemp(f"addon-{request.param}")
    with FakeGoogle() as google, seeded_database(request.param, folder) as (url, team):
        web = (
            f'addon_certs_url = "{google.certs_url}"\n'
            f'addon_service_account = "{ROBOT}"\n'
            f'addon_gmail_api = "{google.url}"\n'
        )
        engine = make_engine(url)
        messages = _mailboxes(google, team, engine)
        server = WebServer(folder, url, web=web, body=team_connectors(folder))
        with server:
            yield Addon(server.url, team, google, engine, messages)
        engine.dispose()


def _mailboxes(google: FakeGoogle, team: Team, engine: Engine) -> dict[str, str]:
    """Bob's copy of Dana's renewal mail (in the thread the seed logged), Cat's of her
    private one, a stranger's and the hostile contact's mail to Bob."""
    with engine.connect() as connection:
        threads = dict(
            (subject, thread)
            for subject, thread in connection.execute(
                select(Interaction.subject, Interaction.thread)
            )
        )
    bob = google.add_mailbox(team.member)
    cat = google.add_mailbox(team.other)
    return {
        "renewal": bob.add_message(
            make_email(subject=team.shared_subject, sender=DANA, to=team.member),
            thread_id=threads[team.shared_subject],
        ),
        "private": cat.add_message(
            make_email(subject=team.private_subject, sender=DANA, to=team.other),
            thread_id=threads[team.private_subject],
        ),
        "stranger": bob.add_message(
            make_email(
                subject="Hello",
                sender="Nina Newcomer <nina@newco.example>",
                to=f"{team.member}, Dana <dana@acme.example>",
            )
        ),
        "hostile": bob.add_message(
            make_email(subject="x", sender="Mallory <mallory@evil.example>", to=team.member)
        ),
    }


def post(
    addon: Addon,
    path: str,
    user: str | None,
    *,
    message: str | None = None,
    parameters: Mapping[str, str] | None = None,
    system: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Post an event object shaped as Google's reference documents it, as Google would."""
    endpoint = addon.url + path
    google = addon.google
    system = system or google.id_token(ROBOT, endpoint, issuer=GOOGLE)
    auth: dict[str, Any] = {"systemIdToken": system}
    if user is not None:
        auth["userIdToken"] = google.id_token(user, endpoint, issuer=GOOGLE)
        auth["userOAuthToken"] = google.issue_access_token(user, SCOPES)
    common: dict[str, Any] = {
        "hostApp": "GMAIL",
        "platform": "WEB",
        "userLocale": "en",
        "timeZone": {"id": "UTC", "offset": 0},
    }
    if parameters is not None:
        common["parameters"] = dict(parameters)
    event: dict[str, Any] = {"commonEventObject": common, "authorizationEventObject": auth}
    if message is not None and user is not None:
        gmail_id = addon.messages[message]
        box = google.mailboxes[user]
        event["gmail"] = {
            "messageId": gmail_id,
            "threadId": box.messages[gmail_id].thread_id,
            "accessToken": google.issue_message_token(user, gmail_id),
        }
    sent = {"Authorization": f"Bearer {system}", **(headers or {})}
    answer = httpx.post(endpoint, json=event, headers=sent, timeout=30)
    if answer.status_code == 200:
        assert schema_errors(answer.json(), SCHEMA) == [], answer.text
    return answer


def card_of(answer: httpx.Response) -> dict[str, Any]:
    navigation = answer.json()["renderActions"]["action"]["navigations"][0]
    shown: dict[str, Any] = navigation.get("pushCard") or navigation["updateCard"]
    return shown


def texts(shown: Mapping[str, Any]) -> str:
    return json.dumps(shown, ensure_ascii=False)


def buttons(shown: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for body in shown["sections"]:
        for widget in body["widgets"]:
            for button in widget.get("buttonList", {}).get("buttons", []):
                found[button["text"]] = button["onClick"]
    return found


def parameters_of(on_click: Mapping[str, Any]) -> dict[str, str]:
    return {p["key"]: p["value"] for p in on_click["action"]["parameters"]}


# -- who may call


def test_a_request_without_googles_token_is_refused(addon: Addon) -> None:
    endpoint = addon.url + "/addon/gmail"
    google = addon.google
    bob = addon.team.member
    forged = {
        "expired": google.id_token(ROBOT, endpoint, issuer=GOOGLE, expires_in=-60),
        "wrong audience": google.id_token(ROBOT, addon.url + "/addon/homepage", issuer=GOOGLE),
        "wrongly signed": google.id_token(ROBOT, endpoint, issuer=GOOGLE, key="other"),
        "not the add-on's account": google.id_token(bob, endpoint, issuer=GOOGLE),
        "not Google's issuer": google.id_token(ROBOT, endpoint),
        "garbage": "not.a.token",
    }
    for why, token in forged.items():
        answer = post(addon, "/addon/gmail", bob, message="renewal", system=token)
        assert answer.status_code == 401, why
        assert answer.headers["www-authenticate"].startswith("Bearer"), why
        assert "Dana" not in answer.text, why
    for headers in ({"Authorization": ""}, {"Authorization": "Basic eDp5"}):
        answer = post(addon, "/addon/homepage", bob, headers=headers)
        assert answer.status_code == 401
    assert post(addon, "/addon/homepage", bob).status_code == 200


def test_a_body_that_is_no_event_object(addon: Addon) -> None:
    endpoint = addon.url + "/addon/homepage"
    headers = {"Authorization": "Bearer " + addon.google.id_token(ROBOT, endpoint, issuer=GOOGLE)}
    for body, status in ((b"[]", 400), (b"{", 400), (b" " * (256 * 1024 + 1), 413)):
        answer = httpx.post(endpoint, content=body, headers=headers, timeout=30)
        assert answer.status_code == status


def test_a_forged_user_token_is_refused(addon: Addon) -> None:
    endpoint = addon.url + "/addon/homepage"
    system = addon.google.id_token(ROBOT, endpoint, issuer=GOOGLE)
    event = {
        "commonEventObject": {"hostApp": "GMAIL", "platform": "WEB"},
        "authorizationEventObject": {
            "systemIdToken": system,
            "userIdToken": addon.google.id_token(
                addon.team.admin, endpoint, issuer=GOOGLE, key="other"
            ),
        },
    }
    answer = httpx.post(endpoint, json=event, headers={"Authorization": f"Bearer {system}"})
    assert answer.status_code == 401


def test_strangers_get_a_sign_in_card_and_no_data(addon: Addon) -> None:
    for user in ("stranger@example.com", None):
        answer = post(addon, "/addon/gmail", user)
        assert answer.status_code == 200
        shown = card_of(answer)
        assert shown["name"] == "sign-in"
        assert "Dana" not in answer.text and "Acme" not in answer.text
        link = buttons(shown)["Open crm-sync"]["openLink"]["url"]
        assert link == addon.url + "/login"
    action = post(addon, "/addon/actions/thread_private", "stranger@example.com", parameters={})
    assert card_of(action)["name"] == "sign-in"


def test_a_disabled_user_gets_the_sign_in_card(addon: Addon) -> None:
    def disabled(value: bool) -> None:
        with addon.engine.begin() as connection:
            connection.execute(
                update(User).where(User.email == addon.team.other).values(disabled=value)
            )

    disabled(True)
    try:
        answer = post(addon, "/addon/gmail", addon.team.other, message="private")
        assert card_of(answer)["name"] == "sign-in"
        assert addon.team.private_subject not in answer.text and "Dana" not in answer.text
    finally:
        disabled(False)


def test_the_homepage_names_the_user(addon: Addon) -> None:
    shown = card_of(post(addon, "/addon/homepage", addon.team.member))
    assert shown["name"] == "home"
    assert shown["header"]["subtitle"] == addon.team.member
    fetched = addon.google.calls["oidc.certs"]
    for _ in range(3):
        assert post(addon, "/addon/homepage", addon.team.member).status_code == 200
    assert addon.google.calls["oidc.certs"] == fetched  # the certificates are kept a while


# -- what the cards show


def test_the_open_messages_sender_is_shown_as_the_member_may_see_them(addon: Addon) -> None:
    team = addon.team
    shown = card_of(post(addon, "/addon/gmail", team.member, message="renewal"))
    text = texts(shown)
    assert shown["name"] == f"contact-{team.dana_id}"
    assert shown["header"] == {"title": "Dana Whitfield", "subtitle": "dana@acme.example"}
    assert "Acme Widgets" in text and "CFO" in text
    assert "Re: " + team.shared_subject in text  # the last conversation and its topic
    assert "Bob" in text  # a teammate who knows her
    assert team.private_subject not in text  # Cat's private thread
    assert "1 private interaction(s) not shown." in text
    assert "2 message(s), shared with the team" in text
    assert "Make private" in buttons(shown)


def test_open_conflicts_are_shown(addon: Addon) -> None:
    sides = {
        "manual": {"value": "CFO", "source": "user:bob@ourteam.example", "observed_at": None},
        "latest": {
            "value": "<b>CEO</b>",
            "source": "user:cat@ourteam.example",
            "observed_at": None,
        },
    }
    with addon.engine.begin() as connection:
        conflict = connection.execute(
            insert(Conflict)
            .values(contact_id=addon.team.dana_id, field="title", values=sides, status="open")
            .returning(Conflict.id)
        ).scalar_one()
    try:
        shown = card_of(post(addon, "/addon/gmail", addon.team.member, message="renewal"))
        conflicts = [s for s in shown["sections"] if s.get("header") == "Open conflicts"]
        assert conflicts[0]["widgets"][0]["decoratedText"]["text"] == "CFO / &lt;b&gt;CEO&lt;/b&gt;"
    finally:
        with addon.engine.begin() as connection:
            connection.execute(delete(Conflict).where(Conflict.id == conflict))


def test_the_owner_of_a_private_thread_sees_it(addon: Addon) -> None:
    shown = card_of(post(addon, "/addon/gmail", addon.team.other, message="private"))
    text = texts(shown)
    assert "not shown" not in text  # nothing held back from her
    assert "1 message(s), private: only you see it" in text
    assert "Share with the team" in buttons(shown)


def test_hostile_text_is_text(addon: Addon) -> None:
    shown = card_of(post(addon, "/addon/gmail", addon.team.member, message="hostile"))
    text = texts(shown)
    assert "<script" not in text and "<img" not in text and "<a href" not in text
    assert "&lt;script&gt;" in shown["header"]["title"]
    assert HOSTILE[:8] not in text
    assert "\u202e" not in shown["header"]["title"]


def test_someone_not_in_the_crm_can_be_created(addon: Addon) -> None:
    team = addon.team
    answer = post(addon, "/addon/gmail", team.member, message="stranger")
    shown = card_of(answer)
    assert shown["name"] == "not-in-crm"
    assert shown["header"]["subtitle"] == "nina@newco.example"
    others = buttons(shown)
    assert parameters_of(others["Dana"]) == {"email": "dana@acme.example"}
    create = others["Create contact"]
    assert create["action"]["function"] == addon.url + "/addon/actions/create_contact"
    assert parameters_of(create) == {"email": "nina@newco.example", "name": "Nina Newcomer"}

    created = post(
        addon,
        create["action"]["function"].removeprefix(addon.url),
        team.member,
        parameters=parameters_of(create),
    )
    action = created.json()["renderActions"]["action"]
    assert action["notification"] == {"text": "Contact created."}
    card = action["navigations"][0]["updateCard"]
    assert card["header"]["title"] == "Nina Newcomer"
    with addon.engine.connect() as connection:
        name = connection.execute(
            select(Contact.display_name)
            .join(ContactEmail, ContactEmail.contact_id == Contact.id)
            .where(ContactEmail.email == "nina@newco.example")
        ).scalar_one()
    assert name == "Nina Newcomer"

    dana = post(
        addon, "/addon/actions/show_person", team.member, parameters=parameters_of(others["Dana"])
    )
    assert card_of(dana)["header"]["title"] == "Dana Whitfield"


def test_the_company_card(addon: Addon) -> None:
    team = addon.team
    shown = card_of(post(addon, "/addon/gmail", team.member, message="renewal"))
    company = post(
        addon,
        "/addon/actions/show_company",
        team.member,
        parameters=parameters_of(buttons(shown)["Company"]),
    )
    card = card_of(company)
    assert card["header"] == {"title": "Acme Widgets", "subtitle": "acme.example"}
    assert "Dana Whitfield" in texts(card)
    assert team.private_subject not in texts(card)


# -- private / share


def visibilities(addon: Addon, subject_contains: str) -> set[str]:
    with addon.engine.connect() as connection:
        return set(
            connection.execute(
                select(Interaction.visibility).where(Interaction.subject.contains(subject_contains))
            ).scalars()
        )


def test_a_member_makes_their_thread_private_and_shares_it_again(addon: Addon) -> None:
    team = addon.team
    shown = card_of(post(addon, "/addon/gmail", team.member, message="renewal"))
    private = buttons(shown)["Make private"]
    assert set(parameters_of(private)) == {"messageId", "threadId", "email"}

    # Cat pressing Bob's button (same parameters) changes nothing: it is not her thread.
    theirs = post(
        addon, "/addon/actions/thread_private", team.other, parameters=parameters_of(private)
    )
    assert theirs.status_code == 200
    assert visibilities(addon, team.shared_subject) == {"shared"}

    answer = post(
        addon, "/addon/actions/thread_private", team.member, parameters=parameters_of(private)
    )
    action = answer.json()["renderActions"]["action"]
    assert action["notification"]["text"] == "The thread is now private: only you see it."
    assert "Share with the team" in buttons(action["navigations"][0]["updateCard"])
    assert visibilities(addon, team.shared_subject) == {"private"}
    ann_view = texts(
        card_of(
            post(
                addon,
                "/addon/actions/show_person",
                team.admin,
                parameters={"email": "dana@acme.example"},
            )
        )
    )
    assert team.shared_subject not in ann_view
    with addon.engine.connect() as connection:
        audited = (
            connection.execute(select(AuditLog.actor).where(AuditLog.action == "thread_visibility"))
            .scalars()
            .all()
        )
    assert set(audited) == {f"user:{team.member}"} and len(audited) == 2

    shared = buttons(action["navigations"][0]["updateCard"])["Share with the team"]
    post(addon, "/addon/actions/thread_shared", team.member, parameters=parameters_of(shared))
    assert visibilities(addon, team.shared_subject) == {"shared"}
    ann_view = texts(
        card_of(
            post(
                addon,
                "/addon/actions/show_person",
                team.admin,
                parameters={"email": "dana@acme.example"},
            )
        )
    )
    assert team.shared_subject in ann_view


def test_unknown_actions_and_bad_parameters(addon: Addon) -> None:
    bob = addon.team.member
    assert post(addon, "/addon/actions/drop_tables", bob, parameters={}).status_code == 404
    for name, parameters in (
        ("show_company", {"company": "x"}),
        ("show_person", {"email": "not an address"}),
        ("create_contact", {"email": "<script>"}),
    ):
        answer = post(addon, f"/addon/actions/{name}", bob, parameters=parameters)
        assert "notification" in answer.json()["renderActions"]["action"], name


# -- the preview


def test_admins_preview_the_cards(addon: Addon) -> None:
    with (
        httpx.Client(base_url=addon.url, timeout=30) as ann,
        httpx.Client(base_url=addon.url, timeout=30) as bob,
        httpx.Client(base_url=addon.url, timeout=30) as anonymous,
    ):
        sign_in(ann, addon.team.admin)
        sign_in(bob, addon.team.member)
        page = ann.get("/addon/preview")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Gmail add-on cards" in page.text and "Not in the CRM yet" in page.text
        assert "<script" not in page.text.lower()
        assert bob.get("/addon/preview").status_code == 403
        assert anonymous.get("/addon/preview").status_code == 303
