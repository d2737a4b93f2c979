"""Desk plumbing: signed session cookie, security headers, error pages, static files."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailflow.config import Settings
from mailflow.web.auth import LoginRequired, login_redirect
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
    """Adds conservative security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS if k not in names]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, wrapped)


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
    """Session (httponly, SameSite=Lax, Secure when the public URL is https) + headers."""
    https_only = bool(
        getattr(settings.web, "https_only", settings.institution.public_url.startswith("https:"))
    )
    return [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(settings),
            session_cookie="mailflow_sesion",
            max_age=SESSION_HOURS * 3600,
            same_site="lax",
            https_only=https_only,
        ),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return login_redirect(exc.next_url)
    assert isinstance(exc, HTTPException)
    if exc.status_code in (403, 404):
        return render(request, f"{exc.status_code}.html", status=exc.status_code, detail=exc.detail)
    return render(request, "error.html", status=exc.status_code, detail=exc.detail)


def error_handlers() -> dict[Any, Any]:
    """Spanish error pages; anonymous visitors of desk pages go to the login page."""
    return {HTTPException: _http_error}


def static_mount() -> Mount:
    """/static: the desk stylesheet and script."""
    return Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
