"""Rendering desk pages: the shared template context, flash messages and the request clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from mailflow.web import WebContext
from mailflow.web.csrf import csrf_token

_FLASH = "flash"


def context_of(request: Request) -> WebContext:
    """The WebContext the app was built with."""
    ctx: WebContext = request.app.state.mailflow
    return ctx


def now(request: Request) -> dt.datetime:
    """The current instant (the web edge reads the clock; tests may replace `app.state.clock`)."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else dt.datetime.now(dt.UTC)


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """Queue a one-time message (kind ok | error | info) for the next page shown."""
    messages = list(request.session.get(_FLASH, []))
    messages.append({"kind": kind, "text": text})
    request.session[_FLASH] = messages[-5:]


def redirect(url: str) -> RedirectResponse:
    """A 303 redirect (the answer to every successful POST)."""
    return RedirectResponse(url, status_code=303)


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render `templates/web/<template>` with user, CSRF token, flashes and the nav section."""
    ctx = context_of(request)
    user = getattr(request.state, "user", None)
    messages = request.session.pop(_FLASH, []) if "session" in request.scope else []
    html = ctx.templates.get_template(template).render(
        request=request,
        user=user,
        csrf_token=csrf_token(request) if "session" in request.scope else "",
        messages=messages,
        institution=ctx.settings.institution,
        section=values.pop("section", ""),
        **values,
    )
    headers = {"Cache-Control": "no-store"}
    return HTMLResponse(html, status_code=status, headers=headers)
