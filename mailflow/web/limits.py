"""Request limits: body size (413 before reading) and numbers beyond any database id."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailflow.web.pages import render

UPLOAD_PATHS = frozenset({"/registro/subir"})  # may send up to web.max_upload_bytes
MAX_RECORD_ID = 2**63 - 1  # database ids are signed 64-bit integers
OUT_OF_RANGE = "Un número de la solicitud está fuera de rango."


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
            await plain_page(send, 400, "La longitud declarada de la solicitud no es válida.")
            return
        if declared is not None and declared > limit:
            await plain_page(send, 413, _too_large_text(limit))
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
            await plain_page(send, 413, _too_large_text(limit))


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


async def plain_page(send: Send, status: int, text: str) -> None:
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
