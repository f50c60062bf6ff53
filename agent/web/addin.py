"""The Outlook add-in's task pane, served by the web app.

Outlook shows ``/addin/taskpane`` beside the open message (the manifest from
``crm-sync addin manifest`` points at it). The page reads the message's
people with Office.js and asks ``/addin/record`` for each one's record, with
the same :func:`~storage.profiles.contact_profile` as the contact page, through
the same :class:`~storage.visibility.Viewer`, so a member sees no other
member's private thread here either. Signed out, the record answers 401 and
the pane shows a sign-in card; signing in is the web app's ``/login`` in an
Office dialog that ends on ``/addin/signed-in``, which tells the pane through
``Office.context.ui.messageParent``.

Who asks. Where the pane is a page of its own (classic Outlook for Windows,
Outlook for Mac) the web app's session cookie comes along. Outlook on the web
frames the pane in its own site, where a browser withholds the app's
``SameSite=Lax`` cookie; so, as Microsoft's dialog guidance has it, the
dialog's last page, which is a window of the app's own and holds the session,
hands the pane a *pane token* through ``messageParent``, and the pane sends it
as ``Authorization: Bearer``. The token is the user's id and session version,
signed with the session secret and good for ``[web] session_hours``: signing
out or a new password ends it as it ends the session.

Office.js comes from Microsoft's CDN, and Outlook on the web frames the pane:
these two pages alone send a policy that allows that script host (and, for the
pane, those framing hosts); every other page keeps the app's policy.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from agent.mail.addresses import normalize_email
from agent.web.context import Database, signed_in_user, state_of
from agent.web.render import page
from agent.web.security import bearer_token, content_policy
from storage.contacts import find_contact
from storage.models import User
from storage.profiles import ContactProfile, contact_profile
from storage.users import viewer_of

router = APIRouter(prefix="/addin", include_in_schema=False)

OFFICE_HOST = "https://appsforoffice.microsoft.com"
OFFICE_JS = f"{OFFICE_HOST}/lib/1/hosted/office.js"
OUTLOOK_HOSTS = (
    "https://outlook.office.com",
    "https://outlook.office365.com",
    "https://outlook.live.com",
    "https://outlook.cloud.microsoft",
)
"""Where Outlook on the web (and the new Outlook for Windows, which is it) frames add-ins."""
TASKPANE_POLICY = content_policy(
    script_src=f"'self' {OFFICE_HOST}",
    frame_ancestors=" ".join(OUTLOOK_HOSTS),
)
DIALOG_POLICY = content_policy(script_src=f"'self' {OFFICE_HOST}")
"""The sign-in dialog's last page runs Office.js too, but is a window of its own: not framed."""
SIGN_IN = "/login?next=%2Faddin%2Fsigned-in"
MAX_ADDRESS = 320
PANE_SALT = "crm-sync outlook pane"
MAX_TOKEN = 512


@router.get("/taskpane")
def taskpane(request: Request) -> Response:
    """The pane, signed in or not: what it shows is decided by what ``/addin/record`` answers."""
    response = page(request, "addin/taskpane.html", office_js=OFFICE_JS, sign_in=SIGN_IN)
    response.headers["content-security-policy"] = TASKPANE_POLICY
    return response


@router.get("/signed-in")
def signed_in(request: Request, session: Database) -> Response:
    """Where the sign-in dialog ends: its script tells the pane, which closes the dialog."""
    user = signed_in_user(request, session)
    response = page(
        request,
        "addin/signed_in.html",
        office_js=OFFICE_JS,
        who=user.email if user else None,
        pane_token=pane_token(request, user) if user else None,
        sign_in=SIGN_IN,
    )
    response.headers["cache-control"] = "no-store"
    response.headers["content-security-policy"] = DIALOG_POLICY
    return response


@router.get("/record")
def record(
    request: Request,
    session: Database,
    address: Annotated[str, Query(max_length=MAX_ADDRESS)] = "",
) -> Response:
    """The record of the contact holding ``address``, as the signed-in user may see it.

    Signed out (or a removed or disabled user) is 401 before the address is even
    read: the answer never says whether someone is in the CRM.
    """
    user = signed_in_user(request, session) or pane_user(request, session)
    if user is None:
        return JSONResponse({"detail": "sign in to crm-sync"}, status_code=401)
    email = normalize_email(address)
    if email is None:
        return JSONResponse({"detail": "not an email address"}, status_code=422)
    contact = find_contact(session, email)
    if contact is None:
        return JSONResponse({"detail": "no contact", "address": email}, status_code=404)
    profile = contact_profile(session, viewer_of(user), contact)
    return JSONResponse({"viewer": user.email, "address": email, **record_of(profile)})


def _pane_tokens(request: Request) -> URLSafeTimedSerializer:
    tokens = getattr(request.app.state, "pane_tokens", None)
    if tokens is None:
        from agent.web.asgi import session_secret

        tokens = URLSafeTimedSerializer(session_secret(state_of(request).app), salt=PANE_SALT)
        request.app.state.pane_tokens = tokens
    return tokens


def pane_token(request: Request, user: User) -> str:
    return str(_pane_tokens(request).dumps([user.id, user.session_version]))


def pane_user(request: Request, session: Session) -> User | None:
    """The user a pane token in the ``Authorization`` header names, while their session
    version stands; None for no token, a forged or expired one, or a disabled user."""
    token = bearer_token(request)
    if token is None or len(token) > MAX_TOKEN:
        return None
    max_age = state_of(request).app.settings.web.session_hours * 3600
    try:
        uid, version = _pane_tokens(request).loads(token, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    user = session.get(User, uid) if isinstance(uid, int) else None
    if user is None or user.disabled or user.session_version != version:
        return None
    return user


def record_of(profile: ContactProfile) -> dict[str, Any]:
    """What the pane shows of a contact page: the same parts, compact."""
    last = profile.last
    return {
        "id": profile.id,
        "url": f"/contacts/{profile.id}",
        "name": profile.name,
        "emails": list(profile.emails),
        "company": profile.company,
        "fields": [{"name": f.name, "value": f.value} for f in profile.fields if f.value],
        "last": None
        if last is None
        else {
            "subject": last.subject,
            "kind": last.kind,
            "direction": last.direction,
            "occurred_at": last.occurred_at.isoformat(),
        },
        "teammates": [
            {
                "name": t.name,
                "email": t.email,
                "interactions": t.interactions,
                "last_at": t.last_at.isoformat(),
            }
            for t in profile.teammates
        ],
        "not_shown": profile.timeline.hidden,
        "conflicts": len(profile.conflicts),
    }
