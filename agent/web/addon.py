"""The Gmail add-on's HTTP endpoints (Google Workspace add-ons, alternate runtime).

Google posts an event object (``commonEventObject``, ``authorizationEventObject``,
``gmail``) to the URLs of the deployment resource that ``crm-sync addon
manifest`` prints, and shows the card JSON answered (:mod:`agent.web.cards`).
Each request is Google's when its ``Authorization: Bearer`` ID token verifies
(:mod:`agent.web.google_id_tokens`: signature, expiry, issuer, audience = the
endpoint's URL, and the add-on's service account when ``[web]
addon_service_account`` is set); anything else gets 401 before the body is read.

The user is the crm-sync user whose address is the verified ``email`` of the
event's ``userIdToken``; nobody else -- no user ID token, an address that is
no user, a disabled user -- gets a sign-in card and no data. Everything shown is
read through the same :class:`~storage.visibility.Viewer` as the web pages, so a
member sees no other member's private thread here either.

The endpoints take no CSRF token: no browser posts to them with a session
cookie (they never read one); each request is authenticated by its own
Google-signed token instead, which a forged cross-site post cannot carry.

The open message's sender and recipients are read from the Gmail API with the
tokens the event carries (the user's ``userOAuthToken`` and the message's own
``gmail.accessToken`` in ``X-Goog-Gmail-Access-Token``), headers only
(``format=metadata``), as the ``gmail.addons.current.message.metadata`` scope
allows; nothing of the message is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from agent.mail.addresses import company_domain, load_free_mail, normalize_email
from agent.mail.envelope import normalize_message_id
from agent.pipeline.people import company_name
from agent.web import cards
from agent.web.cards import Json, Links
from agent.web.context import AdminViewer, Database, state_of
from agent.web.google_id_tokens import InvalidIdToken, verified_email, verify
from agent.web.security import bearer_token
from config.schema import Settings
from storage import edits, history
from storage.contact_lookup import contact_by_id
from storage.contacts import find_contact
from storage.ingest import NewContact
from storage.profiles import company_profile, contact_profile
from storage.thread_marks import SHARED, mark_thread, thread_state
from storage.users import get_user, viewer_of
from storage.visibility import PRIVATE, Viewer

router = APIRouter(prefix="/addon", include_in_schema=False)

HOMEPAGE_PATH = "/addon/homepage"
GMAIL_PATH = "/addon/gmail"
ACTIONS_PATH = "/addon/actions"
MAX_EVENT = 256 * 1024
GMAIL_TIMEOUT = 10.0
_GMAIL_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_HEADERS = ("From", "Reply-To", "To", "Cc", "Message-ID")


@dataclass(frozen=True)
class Context:
    """One authenticated add-on request: the user's session and viewer, the event."""

    session: Session
    sessions: sessionmaker[Session]
    viewer: Viewer
    event: Mapping[str, Any]
    links: Links
    settings: Settings

    @property
    def parameters(self) -> dict[str, str]:
        common = self.event.get("commonEventObject")
        raw = common.get("parameters") if isinstance(common, Mapping) else None
        if not isinstance(raw, Mapping):
            return {}
        return {str(k): str(v) for k, v in raw.items() if isinstance(v, str)}


Builder = Callable[[Context], Json]


def _refused(reason: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"not a verified request from Google: {reason}"},
        status_code=401,
        headers={"www-authenticate": 'Bearer realm="crm-sync add-on"'},
    )


def _web_root(request: Request, settings: Settings) -> str:
    return settings.web.base_url or str(request.base_url).rstrip("/")


async def _serve(request: Request, build: Builder) -> Response:
    """Authenticate, read the event, and answer it with ``build``'s card JSON."""
    settings = state_of(request).app.settings
    root = _web_root(request, settings)
    endpoint = root + request.url.path
    token = bearer_token(request)
    if token is None:
        return _refused("no bearer token")
    try:
        await run_in_threadpool(_verify_google, token, endpoint, settings)
    except InvalidIdToken as exc:
        return _refused(str(exc))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT:
            return JSONResponse({"detail": "the event object is too large"}, status_code=413)
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return JSONResponse({"detail": "the body is not an event object"}, status_code=400)
    links = Links(actions=root + ACTIONS_PATH, web=root)
    try:
        answer = await run_in_threadpool(
            _answer, state_of(request).sessions, settings, event, endpoint, links, build
        )
    except InvalidIdToken as exc:
        return _refused(str(exc))
    return JSONResponse(answer)


def _verify_google(token: str, endpoint: str, settings: Settings) -> None:
    web = settings.web
    verify(
        token,
        audiences=[endpoint],
        certs_url=web.addon_certs_url,
        email=web.addon_service_account,
    )


def _user_email(event: Mapping[str, Any], endpoint: str, settings: Settings) -> str | None:
    """The verified address of the event's user ID token; ``None`` without one."""
    auth = event.get("authorizationEventObject")
    token = auth.get("userIdToken") if isinstance(auth, Mapping) else None
    if not isinstance(token, str) or not token:
        return None
    web = settings.web
    audiences = [endpoint, *([web.addon_client_id] if web.addon_client_id else [])]
    return verified_email(verify(token, audiences=audiences, certs_url=web.addon_certs_url))


def _answer(
    sessions: sessionmaker[Session],
    settings: Settings,
    event: Mapping[str, Any],
    endpoint: str,
    links: Links,
    build: Builder,
) -> Json:
    email = _user_email(event, endpoint, settings)
    with sessions() as session:
        user = get_user(session, email) if email else None
        if user is None or user.disabled:
            return cards.push(cards.sign_in_card(f"{links.web}/login", email))
        context = Context(session, sessions, viewer_of(user), event, links, settings)
        try:
            answer = build(context)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return answer


# -- the triggers


@router.post("/homepage")
async def homepage(request: Request) -> Response:
    """The homepage trigger: who is signed in, and links to the web app."""
    return await _serve(
        request, lambda ctx: cards.push(cards.home_card(ctx.viewer.email, ctx.links))
    )


@router.post("/gmail")
async def gmail_message(request: Request) -> Response:
    """The Gmail contextual trigger: the open message's sender (else first recipient) in the
    CRM, the thread's controls, and buttons for the message's other people."""
    return await _serve(request, _message_card)


@dataclass(frozen=True)
class OpenMessage:
    message_id: str | None
    thread_id: str | None
    people: tuple[tuple[str, str | None], ...]
    """``(address, name)`` of everyone on it who is not of the team, sender first."""


def _message_card(ctx: Context) -> Json:
    opened = _open_message(ctx)
    if opened is None:
        return cards.push(
            cards.card(
                "unreadable",
                "crm-sync",
                None,
                [cards.section(None, [cards.text("This message could not be read.")])],
            )
        )
    if not opened.people:
        thread = _thread_section(ctx, opened, "")
        body = [cards.section(None, [cards.text("Only your team is on this message.")]), thread]
        return cards.push(cards.card("team-only", "crm-sync", None, body))
    email, name = opened.people[0]
    others = [cards.person_button(n or a, a, ctx.links) for a, n in opened.people[1:]]
    return cards.push(_person_card(ctx, email, name, opened, others[: cards.MAX_PEOPLE]))


def _person_card(
    ctx: Context,
    email: str,
    name: str | None,
    opened: OpenMessage | None,
    others: list[Json] | None = None,
) -> Json:
    thread = _thread_section(ctx, opened, email) if opened is not None else None
    contact = find_contact(ctx.session, email)
    if contact is None:
        return cards.not_in_crm_card(email, name, ctx.links, thread=thread, others=others or ())
    profile = contact_profile(ctx.session, ctx.viewer, contact)
    return cards.contact_card(profile, ctx.links, thread=thread, others=others or ())


def _thread_section(ctx: Context, opened: OpenMessage, email: str) -> Json:
    ids = [opened.message_id] if opened.message_id else []
    state = thread_state(ctx.session, ctx.viewer, ids, opened.thread_id)
    parameters = {
        "messageId": opened.message_id or "",
        "threadId": opened.thread_id or "",
        "email": email,
    }
    return cards.thread_section(state, parameters, ctx.links)


def _open_message(ctx: Context) -> OpenMessage | None:
    gmail = ctx.event.get("gmail")
    auth = ctx.event.get("authorizationEventObject")
    if not isinstance(gmail, Mapping) or not isinstance(auth, Mapping):
        return None
    message_id, access_token = gmail.get("messageId"), gmail.get("accessToken")
    user_token = auth.get("userOAuthToken")
    if not (isinstance(message_id, str) and _GMAIL_ID.match(message_id)):
        return None
    if not isinstance(access_token, str) or not isinstance(user_token, str):
        return None
    headers = _message_headers(
        ctx.settings.web.addon_gmail_api, message_id, user_token, access_token
    )
    if headers is None:
        return None
    thread_id = gmail.get("threadId")
    team = history.team_of(ctx.session) | {ctx.viewer.email}
    return OpenMessage(
        message_id=normalize_message_id(headers.get("message-id", [""])[0]),
        thread_id=thread_id if isinstance(thread_id, str) and thread_id else None,
        people=_outsiders(headers, team),
    )


def _message_headers(
    api: str, message_id: str, user_token: str, access_token: str
) -> dict[str, list[str]] | None:
    """The message's address headers, read with its own access token; ``None`` when Gmail
    refuses or cannot be reached."""
    try:
        answer = httpx.get(
            f"{api}/gmail/v1/users/me/messages/{message_id}",
            params=[("format", "metadata"), *(("metadataHeaders", h) for h in _HEADERS)],
            headers={
                "Authorization": f"Bearer {user_token}",
                "X-Goog-Gmail-Access-Token": access_token,
            },
            timeout=GMAIL_TIMEOUT,
        )
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    payload = answer.json().get("payload") or {}
    found: dict[str, list[str]] = {}
    for header in payload.get("headers") or []:
        if isinstance(header, Mapping):
            name, value = header.get("name"), header.get("value")
            if isinstance(name, str) and isinstance(value, str):
                found.setdefault(name.lower(), []).append(value)
    return found


def _outsiders(
    headers: Mapping[str, list[str]], team: frozenset[str] | set[str]
) -> tuple[tuple[str, str | None], ...]:
    people: dict[str, str | None] = {}
    for header in ("from", "reply-to", "to", "cc"):
        for name, raw in getaddresses(headers.get(header, [])):
            address = normalize_email(raw)
            if address and address not in team and address not in people:
                people[address] = name.strip() or None
    return tuple(people.items())


# -- the buttons


def _show_person(ctx: Context) -> Json:
    email = normalize_email(ctx.parameters.get("email", ""))
    if email is None:
        return _notify("That is not an address.")
    return cards.push(_person_card(ctx, email, None, None))


def _show_company(ctx: Context) -> Json:
    raw = ctx.parameters.get("company", "")
    profile = company_profile(ctx.session, ctx.viewer, int(raw)) if raw.isdigit() else None
    if profile is None:
        return _notify("No such company.")
    return cards.push(cards.company_card(profile, ctx.links))


def _create_contact(ctx: Context) -> Json:
    """A contact for the address, with its company by domain as the agent would choose it;
    the name given becomes a person's value."""
    params = ctx.parameters
    email = normalize_email(params.get("email", ""))
    if email is None:
        return _notify("That is not an address.")
    name = params.get("name", "").strip()[:300]
    agent = ctx.settings.agent
    domain = company_domain(
        email, load_free_mail(agent.free_mail_domains, agent.not_free_mail_domains)
    )
    create = NewContact(email, domain, company_name(domain) if domain else None)
    ctx.session.rollback()
    edits.edit_contacts(
        ctx.sessions,
        [edits.Edit(email, {"display_name": name} if name else {}, None, create)],
        user=ctx.viewer.email,
    )
    ctx.session.expire_all()
    return cards.update(_person_card(ctx, email, name or None, None), "Contact created.")


def _mark(visibility: str) -> Builder:
    def build(ctx: Context) -> Json:
        params = ctx.parameters
        message_id = normalize_message_id(params.get("messageId", ""))
        thread_id = params.get("threadId") or None
        opened = OpenMessage(message_id, thread_id, ())
        state = mark_thread(
            ctx.session,
            ctx.viewer,
            [message_id] if message_id else [],
            visibility,
            thread=thread_id,
        )
        done = "private: only you see it" if state.is_private else "shared with the team"
        email = normalize_email(params.get("email", ""))
        if email is None:
            return _notify(f"The thread is now {done}.")
        shown = _person_card(ctx, email, None, opened)
        return cards.update(shown, f"The thread is now {done}.")

    return build


def _notify(message: str) -> Json:
    return {"renderActions": {"action": {"notification": {"text": cards.esc(message)}}}}


_ACTIONS: dict[str, Builder] = {
    "show_person": _show_person,
    "show_company": _show_company,
    "create_contact": _create_contact,
    "thread_private": _mark(PRIVATE),
    "thread_shared": _mark(SHARED),
}


def _action_endpoint(build: Builder) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        """A button's post back; its parameters come back in
        ``commonEventObject.parameters``."""
        return await _serve(request, build)

    return endpoint


for _name, _build in _ACTIONS.items():
    router.add_api_route(
        f"/actions/{_name}", _action_endpoint(_build), methods=["POST"], name=f"addon_{_name}"
    )


# -- the preview


@router.get("/preview")
def preview(
    request: Request,
    viewer: AdminViewer,
    session: Database,
    address: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    """The add-on's cards as the admin would see them, drawn as plain HTML from the same
    card JSON the endpoints answer with: the contact holding ``address`` (else the most
    recent one of the admin's mail), their company, a person not in the CRM, and the
    sign-in card."""
    root = _web_root(request, state_of(request).app.settings)
    links = Links(actions=root + ACTIONS_PATH, web=root)
    shown: list[Json] = [cards.home_card(viewer.email, links)]
    asked = normalize_email(address) if address else None
    if asked:
        contact = find_contact(session, asked)
    else:
        recent = history.my_recent(session, viewer)
        contact_ids = [p.contact_id for e in recent.entries for p in e.people if p.contact_id]
        contact = contact_by_id(session, contact_ids[0]) if contact_ids else None
    if contact is not None:
        profile = contact_profile(session, viewer, contact)
        shown.append(cards.contact_card(profile, links))
        company = (
            company_profile(session, viewer, profile.company_id) if profile.company_id else None
        )
        if company is not None:
            shown.append(cards.company_card(company, links))
    shown.append(cards.not_in_crm_card("new.person@example.com", "New Person", links))
    shown.append(cards.sign_in_card(f"{root}/login", "someone@example.com"))
    return HTMLResponse(cards.preview_page(shown))
