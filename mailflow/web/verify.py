"""Public page GET /verificar/{code}: the constancia de validez of an issued document."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from mailflow.verification import Constancia, verify_code
from mailflow.web import WebContext


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """The public verification route."""

    async def verificar(request: Request) -> HTMLResponse:
        code = str(request.path_params["code"])
        return await run_in_threadpool(page, code)  # database and files: off the event loop

    def page(code: str) -> HTMLResponse:
        with context.db.session(readonly=True) as session:
            result = verify_code(session, context.settings.data_dir, code)
        zone = ZoneInfo(context.settings.calendar.timezone)
        today = dt.datetime.now(zone).date()  # the edge: the page says whether it is in force today
        valid = isinstance(result, Constancia)
        status = _status(result, today) if isinstance(result, Constancia) else "no_valido"
        html = context.templates.get_template("verificar.html").render(
            institution=context.settings.institution,
            result=result,
            valid=valid,
            status=status,
            issued=(
                result.issued_at.astimezone(zone).strftime("%d/%m/%Y %H:%M")
                if isinstance(result, Constancia)
                else ""
            ),
            revoked_at=(
                result.revoked_at.astimezone(zone).strftime("%d/%m/%Y %H:%M")
                if isinstance(result, Constancia) and result.revoked_at
                else ""
            ),
        )
        headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
        return HTMLResponse(html, status_code=200 if valid else 404, headers=headers)

    return [Route("/verificar/{code}", verificar, methods=["GET"], name="verificar")]


def _status(constancia: Constancia, today: dt.date) -> str:
    if constancia.revoked:
        return "revocado"
    if constancia.valid_until is not None and today > constancia.valid_until:
        return "vencido"
    return "valido"
