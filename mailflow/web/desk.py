"""The exception queue: what the machine could not decide, with its reason and the staff actions."""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.audit import record
from mailflow.errors import MailflowError
from mailflow.models import Case, CaseEvent, InboxMessage
from mailflow.web import WebContext, workload
from mailflow.web.auth import require_role
from mailflow.web.csrf import checked_form
from mailflow.web.engine import app_of, process
from mailflow.web.pages import flash, now, redirect, render

DESK_ROLES = ("staff", "manager", "admin")
REVIEW_STATE = "en_revision"
MESSAGE_ACTIONS = {
    "clasificar": "clasificado",
    "reprocesar": "reprocesado",
    "ignorar": "marcado como spam / ignorado",
}
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.default)


QUEUED = or_(
    InboxMessage.status == "set_aside",
    and_(
        InboxMessage.status == "done",
        InboxMessage.disposition == "review",
        InboxMessage.case_id.is_(None),
    ),
)


def in_queue(message: InboxMessage) -> bool:
    """Set aside by an error, or decided "review" without a case (e.g. unclassified)."""
    return message.status == "set_aside" or (
        message.status == "done" and message.disposition == "review" and message.case_id is None
    )


@dataclass(frozen=True)
class QueueItem:
    """One line of the exception queue: an inbox message set aside, or a case in review."""

    kind: str  # "mensaje" | "expediente"
    id: int
    arrived: dt.datetime
    sender: str
    subject: str
    reason: str
    tramite: str | None = None
    case: Case | None = None


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET /bandeja, POST /bandeja/mensajes/{id}, POST /bandeja/lote."""

    async def queue(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        app = app_of(request)
        with context.db.session(readonly=True) as session:
            items = queue_items(session)
            items, prios, assignees = workload.order_queue(
                session, app, items, user, now(request), request.query_params.get("responsable")
            )
        actions = {
            item.id: app.machines[item.case.machine].allowed_events(REVIEW_STATE, "staff")
            for item in items
            if item.case is not None and item.case.machine in app.machines
        }
        tramites = sorted(((t.id, t.name) for t in app.catalogue), key=lambda t: t[1])
        zone = ZoneInfo(context.settings.calendar.timezone)
        return render(
            request,
            "queue.html",
            section="bandeja",
            items=items,
            actions=actions,
            tramites=tramites,
            tramite_names=dict(tramites),
            local=lambda at: at.astimezone(zone).strftime("%d/%m/%Y %H:%M"),
            prios=prios,
            assignees=assignees,
            responsable=request.query_params.get("responsable", ""),
        )

    async def message_action(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        action = str(form.get("action", ""))
        ids = [int(str(request.path_params["id"]))]
        return _act(request, context, ids, action, form, user.actor)

    async def bulk(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        ids = [int(str(v)) for v in form.getlist("ids") if str(v).isdigit()]
        if not ids:
            flash(request, "Seleccione al menos un mensaje de la bandeja.", "error")
            return redirect("/bandeja")
        return _act(request, context, ids, str(form.get("action", "")), form, user.actor)

    return [
        Route("/bandeja", queue, methods=["GET"], name="bandeja"),
        Route("/bandeja/mensajes/{id:int}", message_action, methods=["POST"]),
        Route("/bandeja/lote", bulk, methods=["POST"]),
    ]


def _act(
    request: Request,
    context: WebContext,
    ids: list[int],
    action: str,
    form: object,
    actor: str,
) -> Response:
    from starlette.datastructures import FormData

    assert isinstance(form, FormData)
    if action not in MESSAGE_ACTIONS:
        flash(request, "Acción desconocida.", "error")
        return redirect("/bandeja")
    tramite = str(form.get("tramite", "")) or None
    reason = str(form.get("reason", "")).strip()
    app = app_of(request)
    if action == "clasificar" and (tramite is None or tramite not in app.catalogue.tramites):
        flash(request, "Elija el trámite con el que se clasifica el mensaje.", "error")
        return redirect("/bandeja")
    done, failed = 0, []
    at = now(request)
    for message_id in ids:
        try:
            with context.db.session() as session:
                message = session.get(InboxMessage, message_id)
                if message is None or not in_queue(message):
                    raise MailflowError("ya no está en la bandeja")
                if action == "ignorar":
                    ignore(session, message, actor=actor, now=at, reason=reason)
                else:
                    forced = tramite if action == "clasificar" else None
                    process(session, app, message, actor=actor, now=at, tramite=forced)
            done += 1
        except MailflowError as exc:
            failed.append(f"mensaje {message_id}: {exc}")
    if done:
        plural = "mensaje" if done == 1 else "mensajes"
        flash(request, f"{done} {plural} {MESSAGE_ACTIONS[action]}.")
    for problem in failed:
        flash(request, f"No se pudo procesar el {problem}", "error")
    return redirect("/bandeja")


def ignore(
    session: Session, message: InboxMessage, *, actor: str, now: dt.datetime, reason: str
) -> None:
    """Take a message out of the queue as spam / not a request, leaving an audit event."""
    message.status = "done"
    message.disposition = "ignore"
    message.processed_at = now
    record(
        session,
        "ignorado",
        reason or "Marcado como spam o sin solicitud por el personal.",
        at=now,
        actor=actor,
        case_id=message.case_id,
        inbox_message_id=message.id,
    )


def queue_items(session: Session) -> list[QueueItem]:
    """Messages set aside and cases in review, oldest first."""
    items: list[QueueItem] = []
    messages = session.scalars(
        select(InboxMessage).where(QUEUED).order_by(InboxMessage.arrived_at)
    ).all()
    for msg in messages:
        sender, subject = _headline(msg.raw)
        items.append(
            QueueItem(
                "mensaje",
                msg.id,
                msg.arrived_at,
                sender,
                subject,
                _message_reason(session, msg),
                msg.tramite,
            )
        )
    cases = session.scalars(
        select(Case).where(Case.state == REVIEW_STATE).order_by(Case.received_at)
    ).all()
    for case in cases:
        reason = _case_reason(session, case)
        items.append(
            QueueItem(
                "expediente",
                case.id,
                case.received_at,
                case.applicant_email or "",
                case.number,
                reason,
                case.tramite,
                case,
            )
        )
    items.sort(key=lambda item: item.arrived)
    return items


def _headline(raw: bytes) -> tuple[str, str]:
    try:
        head = _HEADERS.parsebytes(raw[:65536])
        return str(head.get("From", "") or ""), str(head.get("Subject", "") or "(sin asunto)")
    except Exception:  # hostile headers: the queue still shows the line
        return "", "(cabeceras ilegibles)"


def _message_reason(session: Session, msg: InboxMessage) -> str:
    event = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.inbox_message_id == msg.id, CaseEvent.reason != "")
        .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
        .limit(1)
    ).first()
    if event is not None:
        return event.reason
    return msg.last_error or "No se pudo decidir automáticamente."


def _case_reason(session: Session, case: Case) -> str:
    event = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, CaseEvent.to_state == REVIEW_STATE)
        .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
        .limit(1)
    ).first()
    parts = [event.reason] if event is not None and event.reason else []
    parts += [FLAG_TEXT.get(flag, flag) for flag in case.flags]
    return " · ".join(parts) or "Requiere revisión del personal."


FLAG_TEXT = {
    "firma_no_valida": "Firma no válida o no confiable",
    "subsanacion_fuera_de_plazo": "Subsanación fuera de plazo",
    "extemporaneo": "Recurso extemporáneo",
    "identidad_no_coincide": "El remitente no coincide con el registro",
    "subsanacion_ampliada": (
        "Cerrado como no presentado, pero un cambio del calendario amplió su plazo de subsanación"
    ),
}
