"""Who handles what, and what first: assignee and priority on the desk pages, reassignment,
"mis expedientes", and confirming vulnerability signals (each view and change audited)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.app import App
from mailflow.cases import priority
from mailflow.cases.assignment import AssignmentError, assignee_names, reassign
from mailflow.registry.applicants import cross_check, find_applicant
from mailflow.store.audit import record
from mailflow.store.models import Case, CaseSignal, User
from mailflow.vocabulary import AuditKind
from mailflow.web import WebContext
from mailflow.web.auth import SessionUser, require_role
from mailflow.web.csrf import checked_form
from mailflow.web.engine import app_of
from mailflow.web.pages import flash, now, redirect

DESK_ROLES = ("staff", "manager", "admin")
MANAGERS = ("manager", "admin")
MINE = "yo"
CHUNK = 900  # ids per IN (…) list (SQLite's bound-parameter limit)
SIGNAL_STATUS_NAMES = {
    "sugerida": "Por confirmar",
    "confirmada": "Confirmado",
    "descartada": "Descartado",
}


def assignee_filter(
    session: Session, stmt: Select[Any], value: str | None, user: SessionUser
) -> Select[Any]:
    """Filter by assignee: "yo" (the viewer), "sin" (nobody) or a username."""
    if not value:
        return stmt
    if value == "sin":
        return stmt.where(Case.assignee_id.is_(None))
    username = user.username if value == MINE else value
    uid = session.scalar(select(User.id).where(User.username == username))
    return stmt.where(Case.assignee_id == (uid if uid is not None else -1))


def desk_users(session: Session) -> list[tuple[str, str]]:
    """(username, full name) of active accounts, by name: the reassignment choices."""
    rows = session.execute(
        select(User.username, User.full_name).where(User.active).order_by(User.full_name)
    ).all()
    return [(u, n) for u, n in rows]


def days_left(app: App, case: Case, today: dt.date) -> int | None:
    """Días hábiles from today to the due date of an open case whose clock runs, else None."""
    if case.due_date is None or case.closed_at is not None or (case.sla or {}).get("paused_on"):
        return None
    return app.calendario_de(case.office).business_days_between(today, case.due_date)


def priorities(
    session: Session, app: App, cases: Sequence[Any], today: dt.date
) -> dict[int, priority.Priority]:
    """Case id → its priority now, for lists: level and reasons without vulnerability details
    for every role (details are shown, and their viewing audited, on the case page only)."""
    ids = [c.id for c in cases]
    signals: dict[int, list[CaseSignal]] = {i: [] for i in ids}
    if ids:
        for s in session.scalars(select(CaseSignal).where(CaseSignal.case_id.in_(ids))):
            signals[s.case_id].append(s)
    return {
        c.id: priority.assess(
            app.vulnerability, c, signals[c.id], days_left(app, c, today), detailed=False
        )
        for c in cases
    }


def case_extras(
    session: Session, app: App, case: Case, user: SessionUser, at: dt.datetime
) -> dict[str, Any]:
    """Template values of the case page's assignment, priority and registry blocks.

    A viewer allowed to see vulnerability details who is shown any leaves an audit event
    (Ley 29733: access to sensitive data is traced). In the caller's (writable) transaction.
    """
    today = app.calendario_de(case.office).local(at).date()
    signals = priority.signals_of(session, case)
    detailed = app.vulnerability.may_see_details(user.role)
    assessed = priority.assess(
        app.vulnerability, case, signals, days_left(app, case, today), detailed=detailed
    )
    if detailed and signals:
        record(
            session, AuditKind.VULNERABILIDAD_VISTA, "Consulta de datos de vulnerabilidad.", at=at,
            actor=user.actor, case_id=case.id, data={"signals": [s.id for s in signals]},
        )  # fmt: skip
    value = lambda k: (lambda v: v.get("value") if isinstance(v, dict) else v)(case.fields.get(k))  # noqa: E731
    applicant = find_applicant(
        session, case.applicant_email, value("documento_identidad"), value("carne_extranjeria")
    )
    assignee = session.get(User, case.assignee_id) if case.assignee_id else None
    return {
        "assignee_name": assignee.full_name if assignee else None,
        "may_reassign": user.role in MANAGERS,
        "desk_users": desk_users(session) if user.role in MANAGERS else [],
        "prio": assessed,
        "signals_detailed": detailed,
        "signals": [
            {
                "id": s.id,
                "name": app.vulnerability.categories[s.category].name
                if s.category in app.vulnerability.categories
                else s.category,
                "source": priority.SOURCE_NAMES.get(s.source, s.source),
                "evidence": s.evidence,
                "status": s.status,
                "status_name": SIGNAL_STATUS_NAMES.get(s.status, s.status),
            }
            for s in signals
        ]
        if detailed
        else [],
        "registry": applicant,
        "registry_differences": cross_check(applicant, {k: value(k) for k in case.fields})
        if applicant
        else [],
    }


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET /mis-expedientes, POST /expedientes/{id}/asignar, POST …/vulnerabilidad."""

    async def mine(request: Request) -> Response:
        require_role(request, *DESK_ROLES)
        return redirect(f"/expedientes?responsable={MINE}")

    async def assign(request: Request) -> Response:
        user = require_role(request, *MANAGERS)
        form = await checked_form(request)
        case_id = int(request.path_params["id"])
        username = str(form.get("username", ""))
        try:
            with context.db.session() as session:
                case = _case(session, case_id)
                chosen = reassign(
                    session, case, username, now=now(request), actor=user.actor,
                    reason=str(form.get("reason", "")).strip(),
                )  # fmt: skip
                text = f"{case.number}: asignado a {chosen.full_name}."
        except AssignmentError as exc:
            flash(request, f"No se reasignó: {exc}.", "error")
            return redirect(f"/expedientes/{case_id}")
        flash(request, text)
        return redirect(f"/expedientes/{case_id}")

    async def decide(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        app = app_of(request)
        if not app.vulnerability.may_see_details(user.role):
            raise HTTPException(403, "Su rol no puede ver ni cambiar datos de vulnerabilidad.")
        form = await checked_form(request)
        case_id = int(request.path_params["id"])
        status = str(form.get("status", ""))
        try:
            with context.db.session() as session:
                case = _case(session, case_id)
                priority.decide(
                    session, app.vulnerability, case, _int(form.get("signal")), status,
                    actor=user.actor, now=now(request),
                )  # fmt: skip
        except ValueError as exc:
            flash(request, f"No se registró: {exc}.", "error")
            return redirect(f"/expedientes/{case_id}")
        flash(
            request,
            "Dato de vulnerabilidad "
            + ("confirmado." if status == "confirmada" else "descartado."),
        )
        return redirect(f"/expedientes/{case_id}")

    return [
        Route("/mis-expedientes", mine, methods=["GET"], name="mis_expedientes"),
        Route("/expedientes/{id:int}/asignar", assign, methods=["POST"]),
        Route("/expedientes/{id:int}/vulnerabilidad", decide, methods=["POST"]),
    ]


def _case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise HTTPException(404, "No existe ese expediente.")
    return case


def names_of(session: Session, cases: Sequence[Any]) -> dict[int, str]:
    """User id → full name for the assignees of `cases`."""
    return assignee_names(session, [c.assignee_id for c in cases])


def queue_people(session: Session, user: SessionUser, responsable: str | None) -> dict[str, int]:
    """The `people` argument of `mailflow.web.queue.select_page`: "yo" → the viewer's id, and
    the username asked for in `responsable` → its id (when it exists)."""
    people = {MINE: user.id}
    if responsable and responsable not in (MINE, "sin"):
        uid = session.scalar(select(User.id).where(User.username == responsable))
        if uid is not None:
            people[responsable] = uid
    return people


def row_priorities(
    session: Session, app: App, rows: Sequence[Any], today: dt.date
) -> dict[int, priority.Priority]:
    """Case id → its priority now, for the exception queue's case rows (`queue.Row`: light
    columns, no Case loaded). Like `priorities`: no vulnerability details for any role."""
    cases = [r for r in rows if r.kind == "expediente"]
    signals: dict[int, list[CaseSignal]] = {r.id: [] for r in cases}
    ids = list(signals)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for s in session.scalars(select(CaseSignal).where(CaseSignal.case_id.in_(chunk))):
            signals[s.case_id].append(s)
    out: dict[int, priority.Priority] = {}
    for r in cases:
        left = (
            app.calendario_de(r.office).business_days_between(today, r.due)
            if r.due is not None and r.clock_runs
            else None
        )
        out[r.id] = priority.assess(app.vulnerability, r, signals[r.id], left, detailed=False)
    return out


def _int(value: object) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() else -1
