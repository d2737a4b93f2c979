"""Desk plumbing: security headers, body limit, session cookie checked against the database,
error pages, static files."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailflow.config import Settings
from mailflow.web.auth import LoginRequired, login_redirect, resolve_session_user
from mailflow.web.limits import OUT_OF_RANGE, BodyLimit, RecordIds, plain_page
from mailflow.web.pages import render

STATIC_DIR = Path(__file__).parent / "static"
SESSION_HOURS = 10
log = logging.getLogger(__name__)
HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
]


class SecurityHeaders:
    """Adds conservative security headers to every HTTP response, an unexpected error's included:
    an exception before the response started is answered here with a plain 500 page (and
    re-raised so the server logs it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def wrapped(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS if k not in names]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except Exception:
            if not started:
                await plain_page(wrapped, 500, "Error interno: el personal técnico fue avisado.")
            raise


class SessionUsers:
    """Checks the session cookie's account and session version in a worker thread on every
    request (see auth.resolve_session_user); needs the session middleware outside it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and "session" in scope
            and not scope["path"].startswith("/static/")
        ):
            await resolve_session_user(Request(scope, receive))
        await self.app(scope, receive, send)


def session_secret(settings: Settings) -> str:
    """The cookie signing key from the environment; a random one (sessions end on restart)."""
    secret = os.environ.get(settings.web.secret_key_env, "")
    if len(secret) >= 16:
        return secret
    log.warning(
        "%s no está definida: se usa una clave aleatoria y las sesiones terminan al reiniciar",
        settings.web.secret_key_env,
    )
    return secrets.token_urlsafe(32)


def desk_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: security headers, body limit, the signed session cookie (httponly,
    SameSite=Lax, Secure when the public URL is https), its server-side check, record ids."""
    https_only = bool(
        getattr(settings.web, "https_only", settings.institution.public_url.startswith("https:"))
    )
    web = settings.web
    return [
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, max_bytes=web.max_body_bytes, upload_bytes=web.max_upload_bytes),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(settings),
            session_cookie="mailflow_sesion",
            max_age=SESSION_HOURS * 3600,
            same_site="lax",
            https_only=https_only,
        ),
        Middleware(SessionUsers),
        Middleware(RecordIds),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return login_redirect(exc.next_url)
    assert isinstance(exc, HTTPException)
    if exc.status_code in (403, 404):
        return render(request, f"{exc.status_code}.html", status=exc.status_code, detail=exc.detail)
    return render(request, "error.html", status=exc.status_code, detail=exc.detail)


async def _out_of_range(request: Request, exc: Exception) -> Response:
    log.info("valor fuera de rango en %s: %s", request.url.path, exc)
    return render(request, "error.html", status=400, detail=OUT_OF_RANGE)


def error_handlers() -> dict[Any, Any]:
    """Spanish error pages; anonymous visitors of desk pages go to the login page; a number
    too large for the database (in a form field, say) is the sender's error: 400, not 500."""
    return {HTTPException: _http_error, OverflowError: _out_of_range, DataError: _out_of_range}


def static_mount() -> Mount:
    """/static: the desk stylesheet and script."""
    return Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
