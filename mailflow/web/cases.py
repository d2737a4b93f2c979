"""Expedientes: the filtered case list, the case page and its staff actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.documents.revocation import RevocationError, revoke
from mailflow.errors import MailflowError
from mailflow.store.models import Case
from mailflow.store.search import case_number, matches
from mailflow.web import WebContext, workload
from mailflow.web.auth import SessionUser, require_role
from mailflow.web.casefile import case_file, download_attachment, download_document
from mailflow.web.caselist_csv import case_list_csv
from mailflow.web.csrf import checked_form
from mailflow.web.engine import app_of, fire
from mailflow.web.labels import Labels
from mailflow.web.message_view import add_note, labels_of
from mailflow.web.pages import flash, now, redirect, render
from mailflow.web.plazo import left_text, plazo

DESK_ROLES = ("staff", "manager", "admin")
PAGE_SIZE = 25
SORTS = {
    "recibido": Case.received_at,
    "vence": Case.due_date,
    "numero": Case.number,
    "estado": Case.state,
    "prioridad": Case.priority,  # vulnerability points (mailflow.cases.priority)
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
        modes = {s.name: s.sla for m in app.machines.values() for s in m.states}
        vocabulary = Labels.of(app)
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
            plazo_of=lambda case: plazo(
                app.calendario_de(case.office), case, today, modes.get(case.state)
            ),
            left_text=left_text,
            local=lambda at: app.calendario.local(at).strftime("%d/%m/%Y %H:%M"),
            csv_query=urlencode({k: v for k, v in q.items() if k not in ("pagina",)}),
            **vocabulary.as_context(),
            assignees=assignees,
            prios=prios,
            desk_users=people,
        )

    async def case_csv(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        app = app_of(request)
        q = request.query_params
        today = now(request).astimezone(ZoneInfo(context.settings.calendar.timezone)).date()
        soon = app.calendario.add_business_days(today, context.settings.sla.due_soon_days)
        paused = {s.name for m in app.machines.values() for s in m.states if s.sla == "paused"}
        stmt = _filtered(select(Case), q, today, soon, paused)
        if q.get("responsable"):
            with context.db.session(readonly=True) as session:
                stmt = workload.assignee_filter(session, stmt, q.get("responsable"), user)
        column = SORTS.get(q.get("orden", "recibido"), Case.received_at)
        descending = q.get("dir", "desc") != "asc"
        stmt = stmt.order_by(column.desc() if descending else column.asc(), Case.id.desc())
        body = await run_in_threadpool(
            case_list_csv, context.db, app, stmt, today,
            lambda case: SLA_NAMES[sla_status(case, today, soon, paused, app.machines)],
        )  # fmt: skip
        stamp = today.strftime("%Y%m%d")
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="expedientes_{stamp}.csv"',
                "Cache-Control": "no-store",
            },
        )

    async def case_note(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        case_id = int(request.path_params["id"])
        with context.db.session() as session:
            if session.get(Case, case_id) is None:
                raise HTTPException(404, "No existe ese expediente.")
            ok = add_note(session, str(form.get("note", "")), user.actor, now(request),
                          case_id=case_id)  # fmt: skip
        flash(request, "Nota guardada." if ok else "Escriba el texto de la nota.",
              "ok" if ok else "error")  # fmt: skip
        return redirect(f"/expedientes/{case_id}")

    async def case_page(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        app = app_of(request)
        data = await run_in_threadpool(
            _case_data, context, app, int(request.path_params["id"]), now(request), user
        )
        return render(request, "case.html", section="expedientes", **data)

    async def case_event(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        app = app_of(request)
        event = str(form.get("event", ""))
        reason = str(form.get("reason", "")).strip()
        back = str(form.get("back", ""))
        case_id = int(request.path_params["id"])
        target = (
            back if back.startswith("/bandeja") and "//" not in back else f"/expedientes/{case_id}"
        )
        try:
            with context.db.session() as session:
                case = session.get(Case, case_id)
                if case is None:
                    raise HTTPException(404, "No existe ese expediente.")
                allowed = app.machines[case.machine].allowed_events(case.state, "staff")
                transition = next((t for t in allowed if t.event == event), None)
                if transition is None:
                    raise MailflowError("esa acción no está permitida en el estado actual")
                if app.machines[case.machine].needs_reason(case.state, event) and not reason:
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

        def read() -> Response:  # parses the message: in a thread, not the loop
            with context.db.session(readonly=True) as session:
                return download_attachment(session, int(p["id"]), int(p["msg"]), int(p["n"]))

        return await run_in_threadpool(read)

    async def document(request: Request) -> Response:
        require_role(request, *DESK_ROLES)
        p = request.path_params
        with context.db.session(readonly=True) as session:
            return download_document(
                session, context.settings.data_dir, int(p["id"]), int(p["doc"])
            )

    async def revoke_document(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        case_id, doc_id = int(request.path_params["id"]), int(request.path_params["doc"])
        try:
            with context.db.session() as session:
                doc = revoke(
                    session,
                    app_of(request),
                    doc_id,
                    actor=user.actor,
                    role=user.role,
                    reason=str(form.get("reason", "")),
                    now=now(request),
                )
                if doc.case_id != case_id:
                    raise RevocationError("el documento no pertenece a este expediente")
                number = doc.number
        except MailflowError as exc:
            flash(request, f"No se pudo revocar: {exc}.", "error")
            return redirect(f"/expedientes/{case_id}")
        flash(request, f"Documento {number} revocado; se avisó a Migraciones.")
        return redirect(f"/expedientes/{case_id}")

    return [
        Route("/expedientes", case_list, methods=["GET"], name="expedientes"),
        Route("/expedientes.csv", case_csv, methods=["GET"], name="expedientes_csv"),
        Route("/expedientes/{id:int}/notas", case_note, methods=["POST"]),
        Route("/expedientes/{id:int}", case_page, methods=["GET"], name="expediente"),
        Route("/expedientes/{id:int}/eventos", case_event, methods=["POST"]),
        Route("/expedientes/{id:int}/mensajes/{msg:int}/adjuntos/{n:int}", attachment),
        Route("/expedientes/{id:int}/documentos/{doc:int}", document),
        Route(
            "/expedientes/{id:int}/documentos/{doc:int}/revocar", revoke_document, methods=["POST"]
        ),
    ]


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
    number = case_number(text)
    if number is not None:
        stmt = stmt.where(Case.number == number)
    elif text:  # ids first, from the narrow search index (SQLite) or the trigram index (PG)
        found = select(Case.id).where(matches(Case.search_text, text))
        stmt = stmt.where(Case.id.in_(found))
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


def _case_data(
    context: WebContext, app: Any, case_id: int, at: dt.datetime, user: SessionUser
) -> dict[str, Any]:
    """The case page's values (its messages are parsed here, in a worker thread), with the
    assignment, priority and registry blocks (writable: viewing vulnerability data is audited)."""
    with context.db.session() as session:
        case = session.get(Case, case_id)
        if case is None:
            raise HTTPException(404, "No existe ese expediente.")
        data = case_file(session, app, case, at, labels_of(session, app))
        data.update(workload.case_extras(session, app, case, user, at))
        return data


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None
