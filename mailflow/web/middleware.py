"""Desk plumbing: security headers, body limit, session cookie checked against the database,
error pages, static files."""

from __future__ import annotations

import html
import logging
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

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
from mailflow.web.pages import render

STATIC_DIR = Path(__file__).parent / "static"
UPLOAD_PATHS = frozenset({"/registro/subir"})  # may send up to web.max_upload_bytes
MAX_RECORD_ID = 2**63 - 1  # database ids are signed 64-bit integers
OUT_OF_RANGE = "Un número de la solicitud está fuera de rango."
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
                await _plain(wrapped, 500, "Error interno: el personal técnico fue avisado.")
            raise


class _TooLarge(Exception):
    """The request body went past its limit while being read."""


class BodyLimit:
    """Refuses request bodies over `max_bytes` (`upload_bytes` on UPLOAD_PATHS) with 413: by the
    declared Content-Length before anything is read, else as soon as the streamed body passes
    the limit, so nothing large is spooled and no CSRF or form parsing runs on it."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope["path"] in UPLOAD_PATHS else self.max_bytes
        declared = _content_length(scope)
        if declared == -1:
            await _plain(send, 400, "La longitud declarada de la solicitud no es válida.")
            return
        if declared is not None and declared > limit:
            await _plain(send, 413, _too_large_text(limit))
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if started:
                raise
            await _plain(send, 413, _too_large_text(limit))


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


class RecordIds:
    """Numbers beyond any database id are answered before routing: a path segment of digits
    (e.g. /expedientes/99999999999999999999) gets 404, it cannot name a record; a query value of
    digits (?pagina=9999...) gets 400. Converting them would overflow the database driver."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            status, detail = 0, ""
            if any(_huge(segment) for segment in scope["path"].split("/")):
                status, detail = 404, "La página no existe."
            elif any(_huge(value) for value in _query_values(scope)):
                status, detail = 400, OUT_OF_RANGE
            if status:
                request = Request(scope, receive)
                page = "404.html" if status == 404 else "error.html"
                response = render(request, page, status=status, detail=detail)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _huge(text: str) -> bool:
    """Whether `text` is a number of digits beyond the largest database id."""
    if not (text.isascii() and text.isdigit()):
        return False
    return len(text) > 19 or (len(text) == 19 and int(text) > MAX_RECORD_ID)


def _query_values(scope: Scope) -> list[str]:
    query = scope.get("query_string", b"").decode("latin-1")
    return [value.strip() for _, value in parse_qsl(query, keep_blank_values=True)]


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None when absent, -1 when malformed."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 19 else -1
    return None


def _too_large_text(limit: int) -> str:
    return f"La solicitud es demasiado grande (máximo {limit // 1024} KB)."


async def _plain(send: Send, status: int, text: str) -> None:
    """A minimal Spanish HTML page that needs no template, session or database."""
    body = (
        '<!doctype html><html lang="es"><meta charset="utf-8"><title>mailflow</title>'
        f"<p>{html.escape(text)}</p></html>"
    ).encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
