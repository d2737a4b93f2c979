"""Expedientes: the filtered case list, the case page and its staff actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.errors import MailflowError
from mailflow.models import Case
from mailflow.web import WebContext, workload
from mailflow.web.auth import require_role
from mailflow.web.casefile import case_file, download_attachment, download_document
from mailflow.web.csrf import checked_form
from mailflow.web.engine import app_of, fire
from mailflow.web.pages import flash, now, redirect, render

DESK_ROLES = ("staff", "manager", "admin")
PAGE_SIZE = 25
SORTS = {
    "recibido": Case.received_at,
    "vence": Case.due_date,
    "numero": Case.number,
    "estado": Case.state,
    "prioridad": Case.priority,  # vulnerability points (mailflow.priority)
}
SLA_NAMES = {
    "on_time": "En plazo",
    "due_soon": "Por vencer",
    "overdue": "Vencido",
    "paused": "Suspendido",
    "stopped": "Concluido",
}


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET /expedientes, GET /expedientes/{id}, POST /expedientes/{id}/eventos, downloads."""

    async def case_list(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        app = app_of(request)
        q = request.query_params
        today = now(request).astimezone(ZoneInfo(context.settings.calendar.timezone)).date()
        soon = app.calendario.add_business_days(today, context.settings.sla.due_soon_days)
        paused = {s.name for m in app.machines.values() for s in m.states if s.sla == "paused"}
        stmt = _filtered(select(Case), q, today, soon, paused)
        sort = q.get("orden", "recibido")
        column = SORTS.get(sort, Case.received_at)
        descending = q.get("dir", "desc") != "asc"
        page = max(1, int(q.get("pagina", "1"))) if q.get("pagina", "1").isdigit() else 1
        with context.db.session(readonly=True) as session:
            stmt = workload.assignee_filter(session, stmt, q.get("responsable"), user)
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.scalars(
                stmt.order_by(column.desc() if descending else column.asc(), Case.id.desc())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            ).all()
            assignees = workload.names_of(session, rows)
            prios = workload.priorities(session, app, rows, today)
            people = workload.desk_users(session) if user.role != "staff" else []
        states = sorted({(s.name, s.label) for m in app.machines.values() for s in m.states})
        labels = {name: label for name, label in states}
        return render(
            request,
            "cases.html",
            section="expedientes",
            cases=rows,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            query=dict(q),
            sort=sort if sort in SORTS else "recibido",
            descending=descending,
            tramites=sorted((t.id, t.name) for t in app.catalogue),
            states=sorted(labels.items(), key=lambda kv: kv[1]),
            state_labels=labels,
            sla_names=SLA_NAMES,
            mailboxes=[m.name for m in context.settings.mailboxes],
            sla_of=lambda case: sla_status(case, today, soon, paused, app.machines),
            assignees=assignees,
            prios=prios,
            desk_users=people,
        )

    async def case_page(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        app = app_of(request)
        with context.db.session() as session:
            case = session.get(Case, int(request.path_params["id"]))
            if case is None:
                raise HTTPException(404, "No existe ese expediente.")
            data = case_file(session, app, case, now(request))
            data.update(workload.case_extras(session, app, case, user, now(request)))
        return render(request, "case.html", section="expedientes", **data)

    async def case_event(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        app = app_of(request)
        event = str(form.get("event", ""))
        reason = str(form.get("reason", "")).strip()
        back = str(form.get("back", ""))
        case_id = int(request.path_params["id"])
        target = back if back in ("/bandeja",) else f"/expedientes/{case_id}"
        try:
            with context.db.session() as session:
                case = session.get(Case, case_id)
                if case is None:
                    raise HTTPException(404, "No existe ese expediente.")
                allowed = app.machines[case.machine].allowed_events(case.state, "staff")
                transition = next((t for t in allowed if t.event == event), None)
                if transition is None:
                    raise MailflowError("esa acción no está permitida en el estado actual")
                if _needs_reason(event) and not reason:
                    raise MailflowError("indique el motivo")
                fire(session, app, case, event, actor=user.actor, now=now(request), reason=reason)
                number, label = case.number, transition.label or event
        except MailflowError as exc:
            flash(request, f"No se pudo realizar la acción: {exc}.", "error")
            return redirect(target)
        flash(request, f"{number}: {label} — hecho.")
        return redirect(target)

    async def attachment(request: Request) -> Response:
        require_role(request, *DESK_ROLES)
        p = request.path_params
        with context.db.session(readonly=True) as session:
            return download_attachment(session, int(p["id"]), int(p["msg"]), int(p["n"]))

    async def document(request: Request) -> Response:
        require_role(request, *DESK_ROLES)
        p = request.path_params
        with context.db.session(readonly=True) as session:
            return download_document(
                session, context.settings.data_dir, int(p["id"]), int(p["doc"])
            )

    return [
        Route("/expedientes", case_list, methods=["GET"], name="expedientes"),
        Route("/expedientes/{id:int}", case_page, methods=["GET"], name="expediente"),
        Route("/expedientes/{id:int}/eventos", case_event, methods=["POST"]),
        Route("/expedientes/{id:int}/mensajes/{msg:int}/adjuntos/{n:int}", attachment),
        Route("/expedientes/{id:int}/documentos/{doc:int}", document),
    ]


def _needs_reason(event: str) -> bool:
    return event in ("rechazar", "declarar_improcedente", "observar")


def sla_status(
    case: Case,
    today: dt.date,
    soon: dt.date,
    paused: set[str],
    machines: dict[str, Any],
) -> str:
    """on_time | due_soon | overdue | paused | stopped for the list's badge."""
    machine = machines.get(case.machine)
    states = {s.name: s for s in machine.states} if machine is not None else {}
    state = states.get(case.state)
    if case.closed_at is not None or (
        state is not None and (state.final or state.sla == "stopped")
    ):
        return "stopped"
    if case.state in paused:
        return "paused"
    if case.due_date is None:
        return "stopped"
    if case.due_date < today:
        return "overdue"
    return "due_soon" if case.due_date <= soon else "on_time"


def _filtered(
    stmt: Select[tuple[Case]], q: Any, today: dt.date, soon: dt.date, paused: set[str]
) -> Select[tuple[Case]]:
    if q.get("tramite"):
        stmt = stmt.where(Case.tramite == q["tramite"])
    if q.get("estado"):
        stmt = stmt.where(Case.state == q["estado"])
    if q.get("buzon"):
        stmt = stmt.where(Case.mailbox == q["buzon"])
    for key, op in (("desde", "ge"), ("hasta", "le")):
        day = _date(q.get(key, ""))
        if day is not None:
            edge = dt.datetime.combine(day, dt.time(0), dt.UTC)
            if op == "ge":
                stmt = stmt.where(Case.received_at >= edge)
            else:
                stmt = stmt.where(Case.received_at < edge + dt.timedelta(days=1))
    text = q.get("q", "").strip()
    if text:
        like = f"%{text}%"
        stmt = stmt.where(
            or_(
                Case.applicant_name.ilike(like),
                Case.applicant_document.ilike(like),
                Case.number.ilike(like),
            )
        )
    open_ = Case.closed_at.is_(None)
    sla = q.get("sla", "")
    if sla == "paused":
        stmt = stmt.where(Case.state.in_(paused), open_)
    elif sla == "overdue":
        stmt = stmt.where(open_, Case.state.not_in(paused), Case.due_date < today)
    elif sla == "due_soon":
        stmt = stmt.where(open_, Case.state.not_in(paused), Case.due_date.between(today, soon))
    elif sla == "on_time":
        stmt = stmt.where(open_, Case.state.not_in(paused), Case.due_date > soon)
    elif sla == "stopped":
        stmt = stmt.where(Case.closed_at.is_not(None))
    return stmt


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None
