"""Perform a transition's effects: replies into the outbox, documents, clocks, timers, flags."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, event, func, insert, select
from sqlalchemy.orm import Session

from mailflow import deadlines, sla
from mailflow.audit import SYSTEM, record
from mailflow.bulkrows import SEES_PENDING, add_row, kept_rows, pending
from mailflow.dias_habiles import fecha_en_letras
from mailflow.documents import CaseData, ReceivedFile
from mailflow.models import Case, CaseEvent, CaseMessage, Document, OutboxMessage
from mailflow.outgoing import (
    Attachment,
    Reply,
    Thread,
    compose_fast,
    render_text,
    sender_address,
)
from mailflow.txcache import tx_info

if TYPE_CHECKING:
    from mailflow.app import App
    from mailflow.machine_terms import Effect, TransitionResult

REPLY_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "cargo_enviado": ("cargo",),
    "oficio_enviado": ("oficio", "autorizacion_viaje"),
}
MESES = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip
CLOCK_TIMERS = (deadlines.REMINDER, deadlines.ESCALATION)
# Replies that answer a procedure filing: the daily cap (loop protection) never holds them back,
# so every filing gets its acknowledgment, cargo or observation, also when a subsanación
# completes it. (The remaining-items reply and follow-up answers stay under the cap.)
FILING_ROLES = ("new_request", "to_review", "inform")  # engine roles (the machine's `events:`)
FILING_TEMPLATES = frozenset({"acuse_recibo", "cargo_enviado", "subsanacion_recibida"})
_OUTBOX = cast(Table, OutboxMessage.__table__)
_CASE_MESSAGES = cast(Table, CaseMessage.__table__)
_FRESH_THREADS = "effects.fresh_threads"
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.id)


@dataclass(frozen=True)
class EffectInput:
    """What the caller adds to a transition: who, why, and what the applicant sent."""

    actor: str = SYSTEM
    reason: str = ""
    missing: tuple[str, ...] = ()  # Spanish labels of the missing requirements
    received_files: tuple[ReceivedFile, ...] = ()
    inbox_message_id: int | None = None  # the message that caused the event, if any

    @property
    def automatic(self) -> bool:
        return self.actor == SYSTEM


@dataclass
class EffectRun:
    """Where effects of one event leave their traces."""

    session: Session
    app: App
    case: Case
    event_row: CaseEvent
    now: dt.datetime
    given: EffectInput
    outbox: list[OutboxMessage] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # registry changes, for the reply


def fecha_larga(day: dt.date) -> str:
    """16 de diciembre de 2026."""
    return f"{day.day} de {MESES[day.month - 1]} de {day.year}"


def run_effects(
    session: Session,
    app: App,
    case: Case,
    result: TransitionResult,
    event_row: CaseEvent,
    now: dt.datetime,
    given: EffectInput,
) -> EffectRun:
    """Run every effect of `result` in order, in the caller's transaction."""
    from mailflow.effect_registry import EFFECTS

    run = EffectRun(session, app, case, event_row, now, given)
    for effect in result.effects:
        EFFECTS[effect.kind].handler(run, effect)
    return run


def audit(run: EffectRun, kind: str, reason: str, data: dict[str, Any] | None = None) -> None:
    """Append an event to the case's trail, linked to the event that caused it."""
    payload = {"cause": run.event_row.id, **(data or {})}
    record(
        run.session,
        kind,
        reason,
        at=run.now,
        actor=run.given.actor,
        case_id=run.case.id,
        event=run.event_row.event,
        data=payload,
    )


# -- clocks -----------------------------------------------------------------------------


def _start_clock(run: EffectRun, _: Effect) -> None:
    app, case = run.app, run.case
    term = (
        app.catalogue.get(case.tramite).term_days
        if case.tramite in app.catalogue.tramites
        else None
    )
    if term is None:
        return
    cal = app.calendario_de(case.office)
    clock = sla.start(cal, case.received_at, term)
    deadlines.store_clock(case, clock)
    deadlines.stamp(case, cal)
    deadlines.schedule_deadline_timers(
        run.session, case, cal, clock.due, app.settings.sla.reminder_days_before
    )
    audit(run, "sla", clock.note, {"op": "start", "clock": deadlines.clock_to_json(clock)})


def _pause_clock(run: EffectRun, _: Effect) -> None:
    clock = deadlines.clock_from_json(run.case.sla)
    if clock is None or clock.is_paused:
        return
    clock = sla.pause(clock, run.app.calendario_de(run.case.office), run.now)
    deadlines.store_clock(run.case, clock)
    deadlines.cancel(run.session, run.case, CLOCK_TIMERS, run.now)
    audit(run, "sla", clock.note, {"op": "pause", "clock": deadlines.clock_to_json(clock)})


def _resume_clock(run: EffectRun, _: Effect) -> None:
    app, case = run.app, run.case
    clock = deadlines.clock_from_json(case.sla)
    deadlines.cancel(run.session, case, (deadlines.SUBSANACION,), run.now)
    if clock is None or not clock.is_paused:
        return
    cal = app.calendario_de(case.office)
    clock = sla.resume(clock, cal, run.now)
    deadlines.store_clock(case, clock)
    deadlines.stamp(case, cal)
    deadlines.schedule_deadline_timers(
        run.session, case, cal, clock.due, app.settings.sla.reminder_days_before
    )
    audit(run, "sla", clock.note, {"op": "resume", "clock": deadlines.clock_to_json(clock)})


def _stop_clock(run: EffectRun, _: Effect) -> None:
    case = run.case
    deadlines.cancel(run.session, case, (*CLOCK_TIMERS, deadlines.SUBSANACION), run.now)
    clock = deadlines.clock_from_json(case.sla)
    if clock is None:
        return
    day = run.app.calendario_de(case.office).local(run.now).date()
    deadlines.store_clock(case, clock, stopped_on=day)
    note = f"Plazo concluido el {day.isoformat()} (vencía el {clock.due.isoformat()})."
    audit(run, "sla", note, {"op": "stop"})


def _open_subsanacion_window(run: EffectRun, _: Effect) -> None:
    app, case = run.app, run.case
    days = app.settings.sla.subsanacion_days
    cal = app.calendario_de(case.office)
    last_day = sla.subsanacion_deadline(cal, run.now, days)
    ends = deadlines.local_instant(cal, last_day + dt.timedelta(days=1))
    deadlines.schedule(run.session, case, deadlines.SUBSANACION, ends)
    case.sla = {**(case.sla or {}), "subsanacion_deadline": last_day.isoformat()}
    note = (
        f"Plazo de subsanación de {days} días hábiles: el solicitante puede responder "
        f"hasta el {last_day.isoformat()}."
    )
    audit(run, "sla", note, {"op": "subsanacion", "until": last_day.isoformat(), "days": days})


# -- documents, replies ------------------------------------------------------------------


def _issue_document(run: EffectRun, effect: Effect) -> None:
    from mailflow.issuing import issue_document

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


def fresh_thread(session: Session, case: Case) -> None:
    """Note that `case` was created in `session`'s transaction: every entry of its thread is
    then one `add_case_message` added in this transaction, so `thread_of` reads them from
    memory (mailflow.bulkrows.kept_rows) instead of the database. A CaseMessage added through
    the ORM for it takes the note back (the query is then needed)."""
    fresh = tx_info(session).setdefault(_FRESH_THREADS, {})
    fresh[case.id] = case
    if not session.info.get(_FRESH_THREADS):
        session.info[_FRESH_THREADS] = True
        event.listen(session, "transient_to_pending", _orm_thread_entry)


def _orm_thread_entry(session: Session, instance: object) -> None:
    if isinstance(instance, CaseMessage):
        tx_info(session).get(_FRESH_THREADS, {}).pop(instance.case_id, None)


def thread_of(session: Session, case: Case) -> Thread:
    """Answer the applicant's latest message and reference the case's whole thread."""
    if tx_info(session).get(_FRESH_THREADS, {}).get(case.id) is case:
        rows = [
            (r["direction"], r["message_id"])
            for r in kept_rows(session, _CASE_MESSAGES, "case_id", case.id)
        ]
        inbound = [message_id for direction, message_id in rows if direction == "in"]
        return Thread(inbound[-1] if inbound else None, tuple(m for _, m in rows))
    stored = session.execute(
        select(CaseMessage.direction, CaseMessage.message_id)
        .where(CaseMessage.case_id == case.id)
        .order_by(CaseMessage.id)
        .execution_options(**{SEES_PENDING: True})
    ).all()
    queued = [
        (r["direction"], r["message_id"]) for r in pending(session, _CASE_MESSAGES)
        if r["case_id"] == case.id
    ]  # fmt: skip
    rows = [*stored, *queued]  # queued rows get the higher ids when inserted
    inbound = [message_id for direction, message_id in rows if direction == "in"]
    return Thread(inbound[-1] if inbound else None, tuple(m for _, m in rows))


def add_case_message(
    session: Session,
    *,
    case_id: int,
    direction: str,
    message_id: str,
    at: dt.datetime,
    inbox_message_id: int | None = None,
    outbox_id: int | None = None,
) -> None:
    """Add one entry ("in" or "out") to a case's thread (queued: mailflow.bulkrows)."""
    add_row(session, _CASE_MESSAGES, {
        "case_id": case_id, "direction": direction, "inbox_message_id": inbox_message_id,
        "outbox_id": outbox_id, "message_id": message_id, "at": at,
    }, kept=True)  # fmt: skip


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


# -- staff routing ----------------------------------------------------------------------


def add_flag(case: Case, flag: str) -> None:
    """Add one flag to a case (kept once)."""
    if flag not in (case.flags or []):
        case.flags = [*(case.flags or []), flag]


def _flag(run: EffectRun, effect: Effect) -> None:
    add_flag(run.case, str(effect.arg))
    audit(run, "flag", f"Marca: {effect.arg}", {"flag": effect.arg})


def _assign(run: EffectRun, _: Effect) -> None:
    """Route the case to a person by rules/assignment.yaml (once) and re-read its signals."""
    from mailflow import assignment, priority

    app, case = run.app, run.case
    priority.detect_signals(run.session, app, case, run.now)  # the new mail may declare more
    office = app.settings.calendar.default_office
    if case.assignee_id is None and app.assignment_rules.rule_for(case, office) is not None:
        assignment.assign_new_case(
            run.session,
            app.assignment_rules,
            case,
            default_office=office,
            now=run.now,
            actor=run.given.actor,
        )


def _notify(run: EffectRun, effect: Effect) -> None:
    who = {"staff": "mesa de partes", "manager": "jefatura", "admin": "administración"}
    audit(run, "notify", f"Aviso a: {who.get(str(effect.arg), effect.arg)}", {"role": effect.arg})


HANDLERS: dict[str, Callable[[EffectRun, Effect], None]] = {
    "start_clock": _start_clock,
    "pause_clock": _pause_clock,
    "resume_clock": _resume_clock,
    "stop_clock": _stop_clock,
    "open_subsanacion_window": _open_subsanacion_window,
    "issue_document": _issue_document,
    "send_reply": _send_reply,
    "flag": _flag,
    "assign": _assign,
    "notify": _notify,
}
"""This module's handlers by effect name (effect_registry.EFFECTS adds argument checks)."""


def add_flags(case: Case, flags: Sequence[str]) -> None:
    """Add flags to a case, keeping order and uniqueness."""
    for flag in flags:
        add_flag(case, flag)
