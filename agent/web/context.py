"""Who is asking, and the database session a request reads through.

Pages know the signed-in user from the signed session cookie; the JSON API
also takes a personal token (``Authorization: Bearer crm_...``). Either
way the user is re-read from the database on every request, so a removed
or disabled user, or a changed role, takes effect at once in every
``serve`` process.

A request waits for its *turn* before it reads anything: a worker runs
``[web] concurrent_requests`` requests at once (2 unless set) and the others
wait in arrival order. Python runs one thread of a process at a time, so
more requests at once add no capacity: their threads queue for the
interpreter at every return from the database, each switch costs CPU, and a
page that makes a dozen round trips waits a dozen times behind the others
(``bench/web.py``, 16 clients, against anyio's 40 threads at once: p95 of
search 44-45 ms against 59-94, of the contact page 197-199 against 259-267;
once pages got cheaper, one at a time beat two: 80-82 ms against 123-132).
The turn is taken before the request's database session and given back when
its handler returns, so a waiting request holds no connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment
from sqlalchemy.orm import Session, sessionmaker

from agent.runtime.app import App
from agent.web.security import CSRF_FIELD, Throttle, csrf_ok
from storage.models import User
from storage.users import note_token_use, token_owner, viewer_of
from storage.visibility import Viewer

USER_KEY = "uid"
VERSION_KEY = "v"


class NotSignedIn(Exception):
    """No session and no token: a page redirects to sign-in, the API answers 401."""


class Forbidden(Exception):
    """Signed in, but not allowed: 403."""


@dataclass
class WebState:
    """What every request shares: set once when the app is built."""

    app: App
    sessions: sessionmaker[Session]
    templates: Environment
    throttle: Throttle
    google: bool
    turns: anyio.Semaphore
    """The worker's turns (anyio binds one made outside an event loop to the loop that serves)."""


def state_of(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


async def turn(request: Request) -> AsyncIterator[None]:
    """Held from before the request's first read until its handler returns."""
    async with state_of(request).turns:
        yield


Turn = Annotated[None, Depends(turn, scope="function")]


def database(request: Request, _turn: Turn) -> Iterator[Session]:
    """One session per request, opened in the request's turn; a request that raised is
    rolled back. It commits before the answer leaves (``scope="function"``): a client told
    "done" (a sign-out, a saved field) never reads the state from before in its next
    request."""
    with state_of(request).sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


Database = Annotated[Session, Depends(database, scope="function")]


def signed_in_user(request: Request, session: Session) -> User | None:
    uid = request.session.get(USER_KEY)
    if not isinstance(uid, int):
        return None
    user = session.get(User, uid)
    if user is None or user.disabled or request.session.get(VERSION_KEY) != user.session_version:
        request.session.clear()
        return None
    return user


def page_viewer(request: Request, session: Database) -> Viewer:
    user = signed_in_user(request, session)
    if user is None:
        raise NotSignedIn
    return viewer_of(user)


def admin_viewer(viewer: Annotated[Viewer, Depends(page_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden
    return viewer


BEARER = HTTPBearer(
    auto_error=False,
    description="A personal token: `crm-sync tokens create EMAIL` prints one.",
)


def api_viewer(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    _turn: Turn,
) -> Viewer:
    """A token's owner, else the signed-in browser's user.

    Read in a short session of its own, closed before the token's use is noted and
    before the request's own session opens: a request never holds two connections,
    so a full pool makes requests wait their turn instead of waiting on each other.
    """
    sessions = state_of(request).sessions
    with sessions() as session:
        if bearer is None:
            user = signed_in_user(request, session)
            if user is None:
                raise NotSignedIn
            return viewer_of(user)
        found = token_owner(session, bearer.credentials.strip())
        if found is None:
            raise NotSignedIn
        viewer = viewer_of(found.user)
    if found.stale:
        note_token_use(sessions, found.token_id)
    return viewer


def api_admin(viewer: Annotated[Viewer, Depends(api_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden
    return viewer


PageViewer = Annotated[Viewer, Depends(page_viewer)]
AdminViewer = Annotated[Viewer, Depends(admin_viewer)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]
ApiAdmin = Annotated[Viewer, Depends(api_admin)]


async def require_csrf(request: Request) -> None:
    """Every form posts the session's token back; checked before anything else is read, so
    a forged post gets 403 whatever else it carries."""
    form = await request.form()
    if not csrf_ok(request.session, form.get(CSRF_FIELD)):
        raise Forbidden


CsrfChecked = Depends(require_csrf)
