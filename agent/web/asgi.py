"""The ASGI app: routes, sessions, security headers and errors, built from the config.

Processes are stateless: sessions live in a signed cookie (the secret from
``[web] session_secret`` or derived from the secret key), so any number of
``serve`` processes can share one PostgreSQL database.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from agent.runtime.app import App
from agent.web import (
    addin,
    addon,
    admin,
    api,
    api_reports,
    api_segments,
    auth,
    pages,
    report_pages,
    segments_pages,
)
from agent.web.context import Forbidden, NotSignedIn, WebState
from agent.web.render import STATIC, environment, page
from agent.web.security import SecurityHeaders, Throttle
from config import ConfigError
from config.secrets import SecretStoreError, derive_secret

SESSION_COOKIE = "crm_sync_session"
SESSION_PURPOSE = "crm-sync web sessions"


def create_app(app: App) -> FastAPI:
    settings = app.settings
    web = settings.web
    app.require_schema()
    secure = bool(web.base_url and web.base_url.startswith("https://"))
    secret = session_secret(app)
    fastapi = FastAPI(
        title="crm-sync",
        version=version("crm-sync"),
        summary="The team's customer database: contacts, companies and their history.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    oauth = _google_client(web.google_client_id, web.google_client_secret, web.google_issuer)
    fastapi.state.oauth_google = oauth
    fastapi.state.web = WebState(
        app=app,
        sessions=app.sessions,
        templates=environment(),
        throttle=Throttle(web.login_attempts),
        google=oauth is not None,
        turns=anyio.Semaphore(web.concurrent_requests),
    )
    fastapi.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=web.session_hours * 3600,
        same_site="lax",
        https_only=secure,
    )
    fastapi.add_middleware(SecurityHeaders, hsts=secure)
    routers = (
        auth,
        pages,
        report_pages,
        segments_pages,
        admin,
        api,
        api_reports,
        api_segments,
        addon,
        addin,
    )
    for router in (module.router for module in routers):
        fastapi.include_router(router)
    fastapi.mount("/static", StaticFiles(directory=STATIC), name="static")
    fastapi.add_api_route("/healthz", _healthz, include_in_schema=False)
    fastapi.add_exception_handler(NotSignedIn, _not_signed_in)
    fastapi.add_exception_handler(Forbidden, _forbidden)
    fastapi.add_exception_handler(StarletteHTTPException, _http_error)
    fastapi.add_exception_handler(RequestValidationError, _invalid)
    return fastapi


def session_secret(app: App) -> str:
    """``[web] session_secret``, else one derived from the secret key; a config error
    naming both when neither is there."""
    settings = app.settings
    if settings.web.session_secret:
        return settings.web.session_secret
    try:
        return derive_secret(SESSION_PURPOSE, app.base_dir / settings.secrets.key_file)
    except SecretStoreError as exc:
        raise ConfigError(
            app.config_file,
            [f"web.session_secret: not set, and no secret key to derive it from: {exc}"],
        ) from None


def app_from_environment() -> FastAPI:
    """For ``uvicorn --factory`` worker processes: the config named in the environment."""
    path = os.environ.get("CRM_SYNC_CONFIG")
    return create_app(App(config_path=Path(path) if path else None))


def _google_client(client_id: str | None, secret: str | None, issuer: str) -> Any:
    if not client_id or not secret:
        return None
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    oauth.register(
        "google",
        client_id=client_id,
        client_secret=secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )
    return oauth.create_client("google")


def _healthz() -> dict[str, str]:
    return {"status": "ok"}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _not_signed_in(request: Request, _exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse(
            {"detail": "sign in, or send a token: Authorization: Bearer crm_..."},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="crm-sync"'},
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def _forbidden(request: Request, _exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": "not allowed"}, status_code=403)
    return page(
        request,
        "error.html",
        status_code=403,
        title="Not allowed",
        message="This page is for admins, or the form had expired: reload the page and try again.",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _is_api(request):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    return page(
        request,
        "error.html",
        status_code=exc.status_code,
        title=f"Error {exc.status_code}",
        message=str(exc.detail),
    )


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    if _is_api(request):
        return JSONResponse({"detail": problems}, status_code=422)
    return page(
        request,
        "error.html",
        status_code=422,
        title="That request was not understood",
        message=problems,
    )
