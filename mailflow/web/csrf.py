"""CSRF protection: a per-session token every POST form must send back in `csrf_token`."""

from __future__ import annotations

import secrets

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

FIELD = "csrf_token"
HEADER = "x-csrf-token"
_KEY = "csrf"


def csrf_token(request: Request) -> str:
    """The session's token, created on first use (rendered as a hidden field in forms)."""
    token = request.session.get(_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[_KEY] = token
    return token


def rotate(request: Request) -> None:
    """Issue a new token (after login and logout)."""
    request.session[_KEY] = secrets.token_urlsafe(32)


async def checked_form(request: Request) -> FormData:
    """The POSTed form after checking its CSRF token; HTTP 403 when missing or wrong."""
    form = await request.form()
    sent = form.get(FIELD) or request.headers.get(HEADER) or ""
    expected = request.session.get(_KEY)
    if (
        not isinstance(sent, str)
        or not isinstance(expected, str)
        or not secrets.compare_digest(sent.encode(), expected.encode())
    ):
        raise HTTPException(403, "El formulario caducó o no es válido: vuelva a cargar la página.")
    return form
