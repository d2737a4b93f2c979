"""Answers no case transition sends: acknowledgments with a registration number, other-channel
information, and replies on an open case (added to the file, status, resend)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.cases.effects import fecha_larga, replies_today, thread_of
from mailflow.mail.authentication import authenticate
from mailflow.mail.message import ParsedMessage
from mailflow.mail.outgoing import Reply, Thread, compose_fast, render_text, sender_address
from mailflow.store.audit import record
from mailflow.store.models import Case, CaseEvent, CaseMessage, OutboxMessage
from mailflow.store.numbering import next_number
from mailflow.vocabulary import AuditKind

if TYPE_CHECKING:
    from mailflow.app import App

REGISTRO_COUNTER = "registro"
DESK_TITLE = "Mesa de Partes Virtual"
SUPPRESSED = "reply_suppressed"  # audit kind of an answer the daily cap held back


def format_registro(year: int, seq: int) -> str:
    """The registration number of a message without a case: format_registro(2026, 7) ==
    "REG-2026-000007" (yearly, gap-free like the expediente)."""
    return f"REG-{year:04d}-{seq:06d}"


@dataclass(frozen=True)
class Letter:
    """One answer to queue: template (templates/replies/<template>.txt.j2), its variables,
    the reference shown in the subject ([EXP-…] or [REG-…]) and the title after it."""

    template: str
    context: dict[str, Any]
    reference: str
    title: str
    dedupe_key: str
    mailbox: str | None = None
    filing: bool = False  # the acknowledgment or cargo of a filing: never held back by the cap


def registro(session: Session, app: App, received: dt.datetime) -> str:
    """Take the next registration number (in the caller's transaction; call it late)."""
    year = app.calendario.local(received).year
    return format_registro(year, next_number(session, REGISTRO_COUNTER, year))


def base_context(app: App, name: str | None) -> dict[str, Any]:
    """Variables every answer has: applicant.name, institution.*, review_days."""
    return {
        "applicant": {"name": name or ""},
        "institution": app.settings.institution.model_dump(),
        "review_days": app.settings.replies.review_days,
    }


def review_until(app: App, received: dt.datetime) -> str:
    """The day staff will have looked at a message received at `received` (días hábiles)."""
    return fecha_larga(app.calendario.due_date(received, app.settings.replies.review_days))


def case_context(app: App, case: Case, session: Session) -> dict[str, Any]:
    """Variables of an answer about a case: case.*, tramite.*, state, filed_on, last_step,
    next_step, subsanacion_deadline and missing (empty), from the case record."""
    tramite = app.catalogue.tramites.get(case.tramite)
    state = state_label(app, case)
    until = (case.sla or {}).get("subsanacion_deadline")
    return {
        **base_context(app, case.applicant_name),
        "case": {
            "number": case.number,
            "due_date": fecha_larga(case.due_date) if case.due_date else "",
        },
        "tramite": {"id": case.tramite, "name": tramite.name if tramite else case.tramite},
        "state": state,
        "filed_on": fecha_larga(case.legal_receipt_day),
        "last_step": last_step(app, session, case),
        "next_step": next_step(case, until),
        "subsanacion_deadline": fecha_larga(dt.date.fromisoformat(until)) if until else "",
        "missing": [],
        "reason": "",
    }


def state_label(app: App, case: Case, state: str | None = None) -> str:
    """The Spanish label of `state` (default: the case's state) in the case's machine, else
    the state id."""
    name = state or case.state
    definition = app.machines.get(case.machine)
    try:
        label = definition.state(name).label if definition is not None else None
    except KeyError:
        label = None
    return label or name


def last_step(app: App, session: Session, case: Case) -> str:
    """The case's latest state change in words an applicant reads ("Pasó a «Admitido (en
    trámite)» el 23/11/2026", local date), or "" before any; no internal reasons are shown."""
    event = session.scalars(
        select(CaseEvent)
        .where(
            CaseEvent.case_id == case.id,
            CaseEvent.kind == "transition",
            CaseEvent.to_state.is_not(None),
        )
        .order_by(CaseEvent.id.desc())
        .limit(1)
    ).first()
    if event is None or event.to_state is None:
        return ""
    day = app.calendario.local(event.at).strftime("%d/%m/%Y")
    return f"Pasó a «{state_label(app, case, event.to_state)}» el {day}"


def next_step(case: Case, subsanacion_until: str | None) -> str:
    """What happens next, in one sentence, from the case's state."""
    if case.closed_at is not None:
        return "El expediente está concluido."
    if case.state == "observado":
        until = (
            fecha_larga(dt.date.fromisoformat(subsanacion_until))
            if subsanacion_until
            else "la fecha indicada en la observación"
        )
        return f"Esperamos los datos observados hasta el {until}; el plazo de atención está suspendido."
    if case.due_date:
        return f"Le responderemos a más tardar el {fecha_larga(case.due_date)}."
    return "El personal revisará su mensaje y le responderá por este medio."


def queue_letter(
    session: Session,
    app: App,
    letter: Letter,
    *,
    to: str,
    to_name: str,
    thread: Thread,
    now: dt.datetime,
    case_id: int | None = None,
    inbox_message_id: int | None = None,
    authenticated: bool = False,
) -> OutboxMessage | None:
    """Compose `letter` and add it to the outbox (and the case's thread), in the caller's
    transaction. Idempotent by `letter.dedupe_key`. Returns None when nothing was queued:
    already queued, or held back by the per-address daily cap (loop protection), which is
    then recorded as a `reply_suppressed` event on the message for the staff queue.
    The cap never holds back a filing's acknowledgment or cargo (`letter.filing`), and it is
    counted apart for answers to authenticated and unauthenticated mail (`authenticated`), so
    forged messages never use up a real sender's cap."""
    if _queued(session, letter.dedupe_key):
        return None
    cap = app.settings.replies.daily_cap_per_address
    if not letter.filing and replies_today(session, app, to, now, authenticated) >= cap:
        record(
            session,
            SUPPRESSED,
            f"Respuesta automática retenida: {to} ya recibió {cap} respuestas hoy "
            "(protección contra bucles); revise el mensaje y responda si corresponde.",
            at=now,
            case_id=case_id,
            inbox_message_id=inbox_message_id,
            data={"template": letter.template, "to": to},
        )
        return None
    settings = app.settings
    reply = Reply(
        case_number=letter.reference,
        tramite_name=letter.title,
        template=letter.template,
        text=render_text(app.templates, letter.template, letter.context),
        from_addr=sender_address(settings.mailboxes, letter.mailbox, settings.institution.domain),
        from_name=f"Mesa de Partes Virtual - {settings.institution.short_name}",
        to_addr=to,
        to_name=to_name,
        dedupe_key=letter.dedupe_key,
        domain=settings.institution.domain,
        thread=thread,
    )
    mime = compose_fast(reply, now)
    row = OutboxMessage(
        case_id=case_id,
        inbox_message_id=inbox_message_id,
        kind=letter.template,
        dedupe_key=letter.dedupe_key,
        message_id=str(mime["Message-ID"]).strip("<>"),
        from_addr=reply.from_addr,
        to_addr=to,
        subject=str(mime["Subject"]),
        raw=mime.as_bytes(),
        created_at=now,
        next_attempt_at=now,
        sender_authenticated=authenticated,
    )
    session.add(row)
    session.flush()
    if case_id is not None:
        session.add(
            CaseMessage(
                case_id=case_id,
                direction="out",
                outbox_id=row.id,
                message_id=row.message_id,
                at=now,
            )
        )
    record(
        session,
        AuditKind.REPLY,
        f"Respuesta en cola: {row.subject}",
        at=now,
        case_id=case_id,
        inbox_message_id=inbox_message_id,
        data={"outbox_id": row.id, "template": letter.template},
    )
    return row


def thread_for(msg: ParsedMessage) -> Thread:
    """Answer `msg` itself: In-Reply-To its Message-ID, References its chain."""
    refs = tuple(r for r in (*msg.references, msg.message_id or "") if r)
    return Thread(msg.message_id or None, refs)


def acknowledge(
    session: Session,
    app: App,
    msg: ParsedMessage,
    *,
    inbox_message_id: int,
    received: dt.datetime,
    now: dt.datetime,
    names_case: bool = False,
) -> str | None:
    """Acknowledge a message staff will review, with a new registration number and when
    they will have looked at it; `names_case` says it names a case that is not the sender's
    (no case data is given). Returns the registration number, or None if not answered."""
    key = f"in{inbox_message_id}:acuse"
    if not msg.sender or _queued(session, key):
        return None
    number = registro(session, app, received)
    context = {
        **base_context(app, msg.sender_name),
        "registro": number,
        "subject": msg.subject[:120],
        "names_case": names_case,
        "review_until": review_until(app, received),
    }
    letter = Letter("acuse_registro", context, number, DESK_TITLE, key)
    _reply_to_sender(session, app, msg, letter, inbox_message_id, now)
    return number


def inform_channel(
    session: Session,
    app: App,
    msg: ParsedMessage,
    topic_id: str | None,
    *,
    inbox_message_id: int,
    received: dt.datetime,
    now: dt.datetime,
) -> str | None:
    """Tell the sender where an off-catalogue procedure is handled (rules/off_catalogue.yaml).
    Returns the registration number, or None when the topic has no channel."""
    topic = app.catalogue.topic(topic_id)
    key = f"in{inbox_message_id}:canal"
    if topic is None or not topic.channel or not msg.sender or _queued(session, key):
        return None
    number = registro(session, app, received)
    context = {
        **base_context(app, msg.sender_name),
        "registro": number,
        "topic": {"id": topic.id, "label": topic.label, "channel": topic.channel},
    }
    letter = Letter("otro_canal", context, number, DESK_TITLE, key)
    _reply_to_sender(session, app, msg, letter, inbox_message_id, now)
    return number


def _reply_to_sender(
    session: Session,
    app: App,
    msg: ParsedMessage,
    letter: Letter,
    inbox_message_id: int,
    now: dt.datetime,
) -> None:
    """Queue `letter` to the message's sender, threaded on the message (no case)."""
    queue_letter(
        session, app, letter, to=msg.sender, to_name=msg.sender_name, thread=thread_for(msg),
        now=now, inbox_message_id=inbox_message_id,
        authenticated=is_authenticated(app, msg),
    )  # fmt: skip


def answer_on_case(
    session: Session,
    app: App,
    case: Case,
    template: str,
    *,
    inbox_message_id: int,
    now: dt.datetime,
    extra: dict[str, Any] | None = None,
    authenticated: bool = False,
) -> OutboxMessage | None:
    """Queue `template` to the case's applicant, threaded on the case (subject [EXP-…]);
    `authenticated`: whether the message answered came from an authenticated sender (its
    own daily cap)."""
    if not case.applicant_email:
        return None
    tramite = app.catalogue.tramites.get(case.tramite)
    context = {**case_context(app, case, session), **(extra or {})}
    letter = Letter(
        template,
        context,
        case.number,
        tramite.name if tramite else case.tramite,
        f"{case.id}:in{inbox_message_id}:{template}",
        case.mailbox,
    )
    return queue_letter(
        session, app, letter, to=case.applicant_email, to_name=case.applicant_name or "",
        thread=thread_of(session, case), now=now, case_id=case.id,
        inbox_message_id=inbox_message_id, authenticated=authenticated,
    )  # fmt: skip


def is_authenticated(app: App, msg: ParsedMessage) -> bool:
    """Whether `msg`'s sender is authenticated by our own receiving server (RFC 8601)."""
    return authenticate(msg, app.settings.security.authserv_id).authenticated


def _queued(session: Session, dedupe_key: str) -> bool:
    return (
        session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key))
        is not None
    )
