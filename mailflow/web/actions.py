"""The exception queue's staff actions: classify, reprocess or ignore messages, fire an event on
cases, join a message to a case. Each takes what the route read from the request and returns
the redirect (with flash messages) or raises MailflowError; `mailflow.web.desk` holds the routes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from mailflow.app import App
from mailflow.errors import MailflowError
from mailflow.store.audit import record
from mailflow.store.models import Case, InboxMessage
from mailflow.vocabulary import AuditKind
from mailflow.web import WebContext
from mailflow.web.engine import app_of, fire, process, read_for_desk
from mailflow.web.message_view import in_queue
from mailflow.web.pages import flash, now, redirect

MESSAGE_ACTIONS = {
    "clasificar": "clasificado",
    "reprocesar": "reprocesado",
    "ignorar": "marcado como spam / ignorado",
}


def back_url(url: str) -> str:
    """Where to go after an action: a queue URL (filters kept), never another site."""
    return url if url.startswith("/bandeja") and "//" not in url and "\\" not in url else "/bandeja"


def act_on_messages(
    request: Request, context: WebContext, ids: list[int], form: FormData, actor: str
) -> Response:
    """Run the form's action ("clasificar" with its "tramite", "reprocesar", "ignorar" with an
    optional "reason") on each queued message in `ids`, each in its own transaction; flashes
    how many were done and the first three failures; returns the redirect to the form's "back"
    queue URL. Messages no longer in the queue are reported, not raised."""
    action = str(form.get("action", ""))
    back = back_url(str(form.get("back", "")))
    if action not in MESSAGE_ACTIONS:
        flash(request, "Elija una acción.", "error")
        return redirect(back)
    tramite = str(form.get("tramite", "")) or None
    reason = str(form.get("reason", "")).strip()
    app = app_of(request)
    if action == "clasificar" and (tramite is None or tramite not in app.catalogue.tramites):
        flash(request, "Elija el trámite con el que se clasifica el mensaje.", "error")
        return redirect(back)
    done, failed = 0, []
    at = now(request)
    forced = tramite if action == "clasificar" else None
    for message_id in ids:
        try:
            reading = None
            if action != "ignorar":  # parse and decide before the write transaction
                with context.db.session(readonly=True) as session:
                    found = session.get(InboxMessage, message_id)
                    queued_now = found is not None and in_queue(found, session)
                if found is not None and queued_now:
                    reading = read_for_desk(app, found, at, forced)
            with context.db.session() as session:
                message = session.get(InboxMessage, message_id)
                if message is None or not in_queue(message, session):
                    raise MailflowError("ya no está en la bandeja")
                if action == "ignorar":
                    ignore(session, message, actor=actor, now=at, reason=reason)
                else:
                    process(
                        session, app, message, actor=actor, now=at, tramite=forced, reading=reading
                    )
            done += 1
        except MailflowError as exc:
            failed.append(f"mensaje {message_id}: {exc}")
    if done:
        plural = "mensaje" if done == 1 else "mensajes"
        flash(request, f"{done} {plural} {MESSAGE_ACTIONS[action]}.")
    for problem in failed[:3]:
        flash(request, f"No se pudo procesar el {problem}", "error")
    return redirect(back)


def act_on_cases(
    request: Request,
    context: WebContext,
    ids: list[int],
    form: FormData,
    actor: str,
    back: str,
) -> Response:
    """Fire one staff event on each selected case in review (each in its own transaction)."""
    app = app_of(request)
    event = str(form.get("event", ""))
    reason = str(form.get("reason", "")).strip()
    if event in ("rechazar", "declarar_improcedente", "observar") and not reason:
        flash(request, "Indique el motivo: se incluye en la respuesta a cada solicitante.", "error")
        return redirect(back)
    done, failed = 0, []
    for case_id in ids:
        try:
            with context.db.session() as session:
                case = session.get(Case, case_id)
                if case is None or case.state not in queue_states(app):
                    raise MailflowError("ya no está en la bandeja")
                fire(session, app, case, event, actor=actor, now=now(request), reason=reason)
            done += 1
        except MailflowError as exc:
            failed.append(f"expediente {case_id}: {exc}")
    if done:
        flash(
            request,
            f"{done} expediente{'' if done == 1 else 's'} atendido{'' if done == 1 else 's'}.",
        )
    for problem in failed[:3]:
        flash(request, f"No se pudo atender el {problem}", "error")
    return redirect(back)


def link_message(
    context: WebContext, app: App, message_id: int, number: str, actor: str, at: dt.datetime
) -> str:
    """Join a queued message to the case numbered `number`; its number. MailflowError when the
    message left the queue or no such case exists."""
    from mailflow.pipeline.desk import link_to_case

    with context.db.session() as session:
        message = session.get(InboxMessage, message_id)
        if message is None or not in_queue(message, session):
            raise MailflowError("el mensaje ya no está en la bandeja")
        case = session.scalars(select(Case).where(Case.number == number)).first()
        if case is None:
            raise MailflowError(f"no existe el expediente «{number or 'sin número'}»")
        link_to_case(app, session, message, case, actor=actor, now=at)
        return case.number


def queue_states(app: App) -> frozenset[str]:
    """States whose cases wait in the staff queue (`queue: true` in any machine's YAML)."""
    return frozenset(s for m in app.machines.values() for s in m.queue_states)


def ignore(
    session: Session, message: InboxMessage, *, actor: str, now: dt.datetime, reason: str
) -> None:
    """Take a message out of the queue as spam / not a request, leaving an audit event."""
    message.status = "done"
    message.disposition = "ignore"
    message.processed_at = now
    record(
        session,
        AuditKind.IGNORADO,
        reason or "Marcado como spam o sin solicitud por el personal.",
        at=now,
        actor=actor,
        case_id=message.case_id,
        inbox_message_id=message.id,
    )
