"""Reply and document effects: issue a document, queue a reply to the applicant (with its
documents attached, under the daily cap), and the context its template gets."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from mailflow.cases.case_thread import add_case_message, thread_of
from mailflow.cases.effect_run import EffectRun, audit
from mailflow.clock import deadlines
from mailflow.clock.dias_habiles import fecha_en_letras
from mailflow.documents.templates import CaseData
from mailflow.mail.outgoing import (
    Attachment,
    Reply,
    compose_fast,
    render_text,
    sender_address,
)
from mailflow.store.audit import record
from mailflow.store.models import Document, OutboxMessage

if TYPE_CHECKING:
    from mailflow.app import App
    from mailflow.cases.machine_terms import Effect

REPLY_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "cargo_enviado": ("cargo",),
    "oficio_enviado": ("oficio", "autorizacion_viaje"),
}
MESES = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip
# Replies that answer a procedure filing: the daily cap (loop protection) never holds them back,
# so every filing gets its acknowledgment, cargo or observation, also when a subsanación
# completes it. (The remaining-items reply and follow-up answers stay under the cap.)
FILING_ROLES = ("new_request", "to_review", "inform")  # engine roles (the machine's `events:`)
FILING_TEMPLATES = frozenset({"acuse_recibo", "cargo_enviado", "subsanacion_recibida"})
_OUTBOX = cast(Table, OutboxMessage.__table__)
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.id)


def fecha_larga(day: dt.date) -> str:
    """16 de diciembre de 2026."""
    return f"{day.day} de {MESES[day.month - 1]} de {day.year}"


def _issue_document(run: EffectRun, effect: Effect) -> None:
    from mailflow.documents.issuing import issue_document

    app, case = run.app, run.case
    kind = str(effect.arg)
    tramite = app.catalogue.get(case.tramite)
    data = CaseData(
        case_id=case.id,
        expediente=case.number,
        tramite=case.tramite,
        tramite_nombre=tramite.name,
        campos=dict(case.fields or {}),
        received_at=case.received_at,
        legal_receipt_day=case.legal_receipt_day,
        due_date=case.due_date,
        documentos=run.given.received_files,
        regla_recepcion=app.calendario_de(case.office).receipt_rule(case.received_at),
    )
    doc = issue_document(
        run.session,
        app.settings,
        data,
        kind,
        f"{run.event_row.id}:{kind}",
        run.now,
        signer=app.signer,
        templates=app.document_templates,
        oficio_prefix=app.settings.institution.oficio_prefix,
        automatic=run.given.automatic,
    )
    run.documents.append(doc)
    audit(run, "document", f"Documento emitido: {kind} {doc.number or ''}".strip(), {
        "document_id": doc.id, "kind": kind, "sha256": doc.sha256,
    })  # fmt: skip


def replies_today(
    session: Session,
    app: App,
    address: str,
    now: dt.datetime,
    authenticated: bool | None = None,
) -> int:
    """Automatic replies already queued to `address` since local midnight.

    With `authenticated` given, only replies to messages of that kind count: replies caused
    by unauthenticated mail (which anyone can forge) never use up the cap of the sender's
    authenticated mail.
    """
    cal = app.calendario
    start = deadlines.local_instant(cal, cal.local(now).date())
    stmt = select(func.count(OutboxMessage.id)).where(
        func.lower(OutboxMessage.to_addr) == address.lower(),
        OutboxMessage.created_at >= start,
    )
    if authenticated is not None:
        stmt = stmt.where(OutboxMessage.sender_authenticated == authenticated)
    return int(session.scalar(stmt) or 0)


def _attachments(run: EffectRun, template: str) -> list[Attachment]:
    return case_documents(run, REPLY_DOCUMENTS.get(template, ()))


def case_documents(run: EffectRun, kinds: Sequence[str]) -> list[Attachment]:
    """The case's latest unrevoked document of each kind, as attachments (the stored bytes)."""
    if not kinds:
        return []
    docs = run.session.scalars(
        select(Document)
        .where(
            Document.case_id == run.case.id,
            Document.kind.in_(kinds),
            Document.revoked_at.is_(None),
        )
        .order_by(Document.id)
    ).all()
    latest = {d.kind: d for d in docs}
    data_dir = run.app.settings.data_dir
    return [
        Attachment(f"{k}_{run.case.number}.pdf", (data_dir / latest[k].path).read_bytes())
        for k in kinds
        if k in latest
    ]


def reply_context(run: EffectRun) -> dict[str, Any]:
    """The variables of templates/replies/*.txt.j2."""
    app, case = run.app, run.case
    tramite = app.catalogue.get(case.tramite)
    until = (case.sla or {}).get("subsanacion_deadline")
    cal = app.calendario_de(case.office)
    return {
        "case": {
            "number": case.number,
            "due_date": fecha_larga(case.due_date) if case.due_date else "",
            "legal_receipt_day": fecha_en_letras(case.legal_receipt_day),
            "receipt_rule": cal.receipt_rule(case.received_at),
        },
        "applicant": {"name": case.applicant_name or ""},
        "tramite": {"id": tramite.id, "name": tramite.name},
        "institution": app.settings.institution.model_dump(),
        "missing": list(run.given.missing),
        "subsanacion_deadline": fecha_larga(dt.date.fromisoformat(until)) if until else "",
        "reason": run.given.reason,
        # the clerk's note: what staff wrote when acting (never the system's intake reasons)
        "note": "" if run.given.automatic else run.given.reason,
        "changes": list(run.changes),
    }


def _send_reply(run: EffectRun, effect: Effect) -> None:
    session, app, case = run.session, run.app, run.case
    template = str(effect.arg)
    key = f"{case.id}:{run.event_row.id}:{template}"
    if any(r.dedupe_key == key for r in run.outbox):
        return  # the event row is new (cases.apply_event): only this run can have used the key
    to = case.applicant_email
    if not to:
        audit(run, "reply_suppressed", "Sin respuesta: el caso no tiene correo del solicitante")
        return
    cap = app.settings.replies.daily_cap_per_address
    machine = app.machines[case.machine]
    filing_events = {machine.event_for(role) for role in FILING_ROLES}
    filing = run.event_row.event in filing_events or template in FILING_TEMPLATES
    authenticated = bool((run.event_row.data or {}).get("sender_authenticated"))
    if (
        run.given.automatic
        and not filing
        and replies_today(session, app, to, run.now, authenticated) >= cap
    ):
        record(
            session,
            "reply_suppressed",
            f"Respuesta automática retenida: {to} ya recibió {cap} respuestas hoy (protección "
            "contra bucles); revise el mensaje y responda si corresponde.",
            at=run.now,
            case_id=case.id,
            inbox_message_id=run.given.inbox_message_id,
            event=run.event_row.event,
            data={"cause": run.event_row.id, "template": template, "to": to},
        )
        return
    settings = app.settings
    tramite = app.catalogue.get(case.tramite)
    reply = Reply(
        case_number=case.number,
        tramite_name=tramite.name,
        template=template,
        text=render_text(app.templates, template, reply_context(run)),
        from_addr=sender_address(settings.mailboxes, case.mailbox, settings.institution.domain),
        from_name=f"Mesa de Partes Virtual - {settings.institution.short_name}",
        to_addr=to,
        to_name=case.applicant_name or "",
        dedupe_key=key,
        domain=settings.institution.domain,
        thread=thread_of(session, case),
        attachments=_attachments(run, template),
        nonce=secrets.token_hex(6),  # once per queued reply; resends send the stored bytes
    )
    mime = compose_fast(reply, run.now)
    values = {
        "case_id": case.id,
        "kind": template,
        "dedupe_key": key,
        "message_id": str(mime["Message-ID"]).strip("<>"),
        "from_addr": reply.from_addr,
        "to_addr": to,
        "subject": str(mime["Subject"]),
        "raw": mime.as_bytes(),
        "created_at": run.now,
        "next_attempt_at": run.now,
        "sender_authenticated": authenticated,
    }
    # one INSERT … RETURNING id, without the ORM's unit of work (the row is not kept in
    # the session; `run.outbox` gets a detached copy carrying the id)
    # straight on the connection: no autoflush (the case's pending changes reach the
    # database with the transition's own flush) and none of the ORM's statement overhead
    new_id = session.connection().execute(_INSERT_OUTBOX, values).scalar_one()
    row = OutboxMessage(id=int(new_id), **values)
    add_case_message(
        session, case_id=case.id, direction="out", outbox_id=row.id,
        message_id=row.message_id, at=run.now,
    )  # fmt: skip
    run.outbox.append(row)
    audit(run, "reply", f"Respuesta en cola: {row.subject}", {"outbox_id": row.id})


HANDLERS: dict[str, Callable[[EffectRun, Effect], None]] = {
    "issue_document": _issue_document,
    "send_reply": _send_reply,
}
"""This module's handlers by effect name."""
