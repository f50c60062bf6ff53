"""Signing in and out: local passwords, and Google (OpenID Connect) where configured.

Only people an admin added (``crm-sync users add``) get in, whichever way
they sign in: Google proves an address, the users table decides whether
that address may enter. A new session id is issued at every sign-in (the
cookie is rewritten whole), and sign-out clears it.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from agent.web.context import (
    USER_KEY,
    VERSION_KEY,
    CsrfChecked,
    Database,
    Forbidden,
    signed_in_user,
    state_of,
)
from agent.web.render import flash, page
from agent.web.security import client_of, csrf_token
from storage.users import authenticate, end_sessions, get_user

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path of this app: a sign-in link must not send anyone to another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return page(request, "login.html", next=safe_next(next), error=None)


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    session: Database,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=2048)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    state = state_of(request)
    address = email.strip().lower()
    keys = (f"email:{address}", f"client:{client_of(request)}")
    wait = state.throttle.retry_after(*keys)
    if wait:
        response = page(
            request,
            "login.html",
            status_code=429,
            next=safe_next(next),
            error=f"Too many failed sign-ins. Try again in {wait} seconds.",
        )
        response.headers["retry-after"] = str(wait)
        return response
    user = authenticate(session, address, password)
    if user is None:
        state.throttle.failed(*keys)
        return page(
            request,
            "login.html",
            status_code=401,
            next=safe_next(next),
            error="That address and password do not match an account.",
        )
    state.throttle.succeeded(keys[0])
    start_session(request, user.id, user.session_version)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, session: Database) -> Response:
    """Ends this user's sessions everywhere: a cookie copied before stops working too."""
    user = signed_in_user(request, session)
    if user is not None:
        end_sessions(user)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def start_session(request: Request, user_id: int, version: int) -> None:
    request.session.clear()
    request.session[USER_KEY] = user_id
    request.session[VERSION_KEY] = version
    csrf_token(request.session)


@router.get("/login/google")
async def google_start(request: Request, next: str | None = None) -> Response:
    client = _google(request)
    request.session["next"] = safe_next(next)
    base = state_of(request).app.settings.web.base_url or str(request.base_url).rstrip("/")
    return await client.authorize_redirect(request, f"{base}/login/google/callback")  # type: ignore[no-any-return]


@router.get("/login/google/callback")
async def google_done(request: Request) -> Response:
    client = _google(request)
    try:
        token = await client.authorize_access_token(request)
    except Exception as exc:  # authlib raises its own error types per failure
        return page(
            request, "login.html", status_code=401, next="/", error=f"Google sign-in failed: {exc}"
        )
    claims: dict[str, Any] = token.get("userinfo") or {}
    email = str(claims.get("email", "")).lower()
    if not email or claims.get("email_verified") is not True:
        return page(
            request,
            "login.html",
            status_code=401,
            next="/",
            error="Google did not confirm an address.",
        )
    state = state_of(request)

    def lookup() -> tuple[int, int] | None:
        with state.sessions() as session:
            user = get_user(session, email)
            if user is None or user.disabled:
                return None
            return user.id, user.session_version

    found = await run_in_threadpool(lookup)
    if found is None:
        return page(
            request,
            "login.html",
            status_code=403,
            next="/",
            error=f"{email} has no account here: an admin adds people with `crm-sync users add`.",
        )
    target = safe_next(request.session.get("next"))
    start_session(request, *found)
    flash(request, f"Signed in as {email}.")
    return RedirectResponse(target, status_code=303)


def _google(request: Request) -> Any:
    client = request.app.state.oauth_google
    if client is None:
        raise Forbidden
    return client
