"""Public pages GET /verificar (a form to type the code) and GET /verificar/{code} (constancia)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailflow.documents.qr import normalize_code
from mailflow.documents.verification import Constancia, verify_code
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

    async def ask(request: Request) -> Response:
        typed = request.query_params.get("codigo", "").strip()[:64]
        if typed and normalize_code(typed) is not None:
            return RedirectResponse(f"/verificar/{quote(typed)}", status_code=303)
        html = context.templates.get_template("verificar.html").render(
            institution=context.settings.institution,
            result=None,
            valid=False,
            status="",
            typed=typed,
            problem="El código no tiene el formato de un código de verificación: revise cada "
            "carácter tal como aparece impreso.",
        )
        headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
        return HTMLResponse(html, status_code=200, headers=headers)

    return [
        Route("/verificar", ask, methods=["GET"], name="verificar_form"),
        Route("/verificar/{code}", verificar, methods=["GET"], name="verificar"),
    ]


def _status(constancia: Constancia, today: dt.date) -> str:
    if constancia.revoked:
        return "revocado"
    if constancia.valid_until is not None and today > constancia.valid_until:
        return "vencido"
    return "valido"
