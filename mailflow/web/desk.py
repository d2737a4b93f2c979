"""The exception queue: what the machine could not decide, with its reason and the staff actions.

The routes and the queue page are here; the actions they run are in `mailflow.web.actions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.app import App
from mailflow.errors import MailflowError
from mailflow.runners.outbox import resend, undelivered
from mailflow.store.models import Case, InboxMessage
from mailflow.web import WebContext, workload
from mailflow.web import reply as replies
from mailflow.web.actions import (
    act_on_cases,
    act_on_messages,
    back_url,
    link_message,
    queue_states,
)
from mailflow.web.auth import SessionUser, require_role
from mailflow.web.casefile import inline_attachment
from mailflow.web.confirm import transition_summary
from mailflow.web.csrf import checked_form
from mailflow.web.engine import app_of
from mailflow.web.message_view import add_note, headline, in_queue, labels_of, message_data
from mailflow.web.pages import flash, now, redirect, render
from mailflow.web.queue import (
    AGES,
    QUEUED,
    SORTS,
    load_rows,
    query_without,
    select_page,
    with_headlines,
    with_scores,
)

DESK_ROLES = ("staff", "manager", "admin")


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET /bandeja, GET /bandeja/mensajes/{id}, staff actions, replies, notes and bulk actions."""
    zone = ZoneInfo(context.settings.calendar.timezone)

    def local(at: dt.datetime) -> str:
        return at.astimezone(zone).strftime("%d/%m/%Y %H:%M")

    async def queue(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        app = app_of(request)
        q = {k: v for k, v in request.query_params.items() if v}
        data = await run_in_threadpool(_queue_page, context, app, q, now(request), user)
        return render(
            request, "queue.html", section="bandeja", query=q, local=local, ages=AGES,
            sorts=SORTS, query_without=query_without, back="/bandeja?" + request.url.query,
            **data,
        )  # fmt: skip

    def message_view(
        request: Request, app: App, data: dict[str, Any], text: str, template: str, back: str
    ) -> Response:
        return render(
            request, "message.html", section="bandeja", local=local, text=text,
            chosen=template, templates=replies.desk_templates(app.settings.templates_dir),
            back=back, **data,
        )  # fmt: skip

    async def message_page(request: Request) -> Response:
        require_role(request, *DESK_ROLES)
        app = app_of(request)
        message_id = int(request.path_params["id"])
        data = await run_in_threadpool(message_data, context, app, message_id)
        if request.query_params.get("parcial") == "1":
            return render(request, "_message_body.html", local=local, **data)
        template = request.query_params.get("plantilla", "")
        text = ""
        if template:
            try:
                text = replies.template_text(app, template, data["parsed"].sender_name)
            except KeyError:
                flash(request, "Esa plantilla de respuesta no existe.", "error")
        back = back_url(request.query_params.get("volver", ""))
        return message_view(request, app, data, text, template, back)

    async def message_attachment(request: Request) -> Response:
        require_role(request, *DESK_ROLES)
        p = request.path_params
        with context.db.session(readonly=True) as session:
            message = session.get(InboxMessage, int(p["id"]))
            if message is None:
                raise HTTPException(404, "No existe ese mensaje.")
            raw = message.raw
        return await run_in_threadpool(inline_attachment, raw, int(p["n"]))

    async def message_action(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        ids = [int(str(request.path_params["id"]))]
        return await run_in_threadpool(act_on_messages, request, context, ids, form, user.actor)

    async def answer(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        app = app_of(request)
        message_id = int(request.path_params["id"])
        text = str(form.get("text", ""))
        back = back_url(str(form.get("back", "")))
        data = await run_in_threadpool(message_data, context, app, message_id)
        if form.get("paso") == "editar":
            return message_view(request, app, data, text, "", back)
        try:
            with context.db.session(readonly=True) as session:
                draft = replies.draft_for(session, app, data["message"], data["parsed"], text)
        except ValueError as exc:
            flash(request, str(exc), "error")
            return redirect(f"/bandeja/mensajes/{message_id}")
        if form.get("paso") != "enviar":
            return render(
                request, "reply_preview.html", section="bandeja", draft=draft,
                message=data["message"], back=back,
            )  # fmt: skip
        with context.db.session() as session:
            message = session.get(InboxMessage, message_id)
            assert message is not None
            row = replies.send(session, app, message, draft, actor=user.actor, now=now(request))
            if form.get("cerrar") == "1" and in_queue(message, session):
                message.status, message.disposition = "done", "answered"
                message.processed_at = now(request)
            to = row.to_addr
        flash(request, f"Respuesta en cola de envío a {to}.")
        return redirect(back if form.get("cerrar") == "1" else f"/bandeja/mensajes/{message_id}")

    async def message_note(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        message_id = int(request.path_params["id"])
        with context.db.session() as session:
            message = session.get(InboxMessage, message_id)
            if message is None:
                raise HTTPException(404, "No existe ese mensaje.")
            ok = add_note(session, str(form.get("note", "")), user.actor, now(request),
                          case_id=message.case_id, inbox_message_id=message_id)  # fmt: skip
        flash(request, "Nota guardada." if ok else "Escriba el texto de la nota.",
              "ok" if ok else "error")  # fmt: skip
        return redirect(f"/bandeja/mensajes/{message_id}")

    async def link(request: Request) -> Response:
        """Staff decided a message naming a case from another address belongs to it: it joins
        the case and counts from its own receipt (staff.link_to_case)."""
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        message_id = int(request.path_params["id"])
        number = str(form.get("expediente", "")).strip().upper()
        try:
            linked = await run_in_threadpool(
                link_message, context, app_of(request), message_id, number, user.actor, now(request)
            )
        except MailflowError as exc:
            flash(request, f"No se pudo vincular: {exc}.", "error")
            return redirect(f"/bandeja/mensajes/{message_id}")
        flash(request, f"Mensaje añadido al expediente {linked}.")
        return redirect("/bandeja")

    async def bulk(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        form = await checked_form(request)
        back = back_url(str(form.get("back", "")))
        if form.get("event"):
            cases = [int(str(v)) for v in form.getlist("casos") if str(v).isdigit()]
            if not cases:
                flash(request, "Seleccione al menos un expediente de la bandeja.", "error")
                return redirect(back)
            return await run_in_threadpool(
                act_on_cases, request, context, cases, form, user.actor, back
            )
        ids = [int(str(v)) for v in form.getlist("ids") if str(v).isdigit()]
        if not ids:
            flash(request, "Seleccione al menos un mensaje de la bandeja.", "error")
            return redirect(back)
        return await run_in_threadpool(act_on_messages, request, context, ids, form, user.actor)

    async def resend_reply(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        await checked_form(request)
        outbox_id = int(request.path_params["id"])
        try:
            with context.db.session() as session:
                resend(session, [outbox_id], actor=user.actor, now=now(request))
        except MailflowError as exc:
            flash(request, f"No se pudo reenviar: {exc}.", "error")
            return redirect("/bandeja")
        flash(request, "Respuesta en cola de nuevo: se enviará en breve.")
        return redirect("/bandeja")

    return [
        Route("/bandeja", queue, methods=["GET"], name="bandeja"),
        Route("/bandeja/envios/{id:int}/reenviar", resend_reply, methods=["POST"]),
        Route("/bandeja/mensajes/{id:int}", message_page, methods=["GET"]),
        Route("/bandeja/mensajes/{id:int}", message_action, methods=["POST"]),
        Route("/bandeja/mensajes/{id:int}/adjuntos/{n:int}", message_attachment),
        Route("/bandeja/mensajes/{id:int}/respuesta", answer, methods=["POST"]),
        Route("/bandeja/mensajes/{id:int}/notas", message_note, methods=["POST"]),
        Route("/bandeja/mensajes/{id:int}/vincular", link, methods=["POST"]),
        Route("/bandeja/lote", bulk, methods=["POST"]),
    ]


def _queue_page(
    context: WebContext, app: App, q: Mapping[str, str], at: dt.datetime, user: SessionUser
) -> dict[str, Any]:
    states = queue_states(app)
    with context.db.session(readonly=True) as session:
        rows = load_rows(session, tuple(sorted(states)))
        # issue 16: priority (highest first by default) and the assignee filter ("Solo lo mío")
        prios = workload.row_priorities(session, app, rows, app.calendario.local(at).date())
        rows = with_scores(rows, {cid: p.score for cid, p in prios.items()})
        people = workload.queue_people(session, user, q.get("responsable"))
        page = select_page(rows, q, at, people)
        assignees = workload.names_of(session, [r for r in page.rows if r.kind == "expediente"])
        waiting = undelivered(session)
        ids = [r.id for r in page.rows if r.kind == "mensaje"]
        stmt = select(InboxMessage.id, InboxMessage.raw).where(InboxMessage.id.in_(ids))
        raws = {k: v for k, v in session.execute(stmt)}
        labels = labels_of(session, app)
    case_ids = [r.id for r in page.rows if r.kind == "expediente"]
    with context.db.session(readonly=True) as session:
        state_of: dict[int, tuple[str, str]] = {}
        emails: dict[int, str | None] = {}
        for cid, machine, state, email in session.execute(
            select(Case.id, Case.machine, Case.state, Case.applicant_email).where(
                Case.id.in_(case_ids)
            )
        ):
            state_of[cid], emails[cid] = (machine, state), email
        first_message: dict[int, int] = {}
        for owner, mid in session.execute(
            select(InboxMessage.case_id, func.min(InboxMessage.id))
            .where(InboxMessage.case_id.in_(case_ids))
            .group_by(InboxMessage.case_id)
        ):
            if owner is not None:
                first_message[owner] = mid
    actions = {
        cid: app.machines[machine].allowed_events(state, "staff")
        for cid, (machine, state) in state_of.items()
        if machine in app.machines
    }
    bulk_events: dict[str, str] = {}
    for m in app.machines.values():  # the staff events offered in any queue state
        for state in m.queue_states:
            for t in m.allowed_events(state, "staff"):
                bulk_events.setdefault(t.event, t.label or t.event)
    return {
        "page": page,
        "undelivered": waiting,
        "rows": with_headlines(page.rows, {i: headline(raw) for i, raw in raws.items()}),
        "prios": {r.id: prios[r.id] for r in page.rows if r.kind == "expediente"},
        "assignees": assignees,
        "responsable": q.get("responsable", ""),
        "actions": actions,
        "first_message": first_message,
        "summaries": {
            (cid, t.event): transition_summary(t, emails.get(cid), labels)
            for cid, offered in actions.items()
            for t in offered
        },
        "bulk_events": sorted(bulk_events.items(), key=lambda kv: kv[1]),
        "tramites": sorted(labels.tramites.items(), key=lambda kv: kv[1]),
        "mailboxes": sorted(labels.mailboxes.items(), key=lambda kv: kv[1]),
        **labels.as_context(),
    }


__all__ = ["QUEUED", "add_note", "in_queue", "labels_of", "routes"]
