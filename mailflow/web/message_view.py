"""One inbox message at the desk: its page data (parsed off the event loop), notes, queue line."""

from __future__ import annotations

import datetime as dt
import email.header
import email.parser
import email.policy
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailflow.app import App
from mailflow.mail.message import ParsedMessage
from mailflow.mail.parse import parse_message
from mailflow.store.audit import record
from mailflow.store.models import Case, CaseEvent, InboxMessage, OutboxMessage, User
from mailflow.vocabulary import AuditKind
from mailflow.web import WebContext
from mailflow.web.casefile import KIND_NAMES
from mailflow.web.labels import Labels
from mailflow.web.queue import HELD

NOTE_KIND = AuditKind.NOTA
MAX_NOTE = 4000
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)  # fast: no parsing


def in_queue(message: InboxMessage, session: Session | None = None) -> bool:
    """Set aside by an error, decided "review" without a case (e.g. unclassified), or its
    answer held back by the daily cap (needs `session` to tell)."""
    if message.status == "set_aside" or (
        message.status == "done" and message.disposition == "review" and message.case_id is None
    ):
        return True
    if session is None or message.status != "done" or message.disposition == "ignore":
        return False
    held = session.scalar(HELD.where(CaseEvent.inbox_message_id == message.id).limit(1))
    return held is not None


def labels_of(session: Session, app: App) -> Labels:
    """The vocabulary with the staff's full names (for "who did it" in timelines)."""
    people = {k: v for k, v in session.execute(select(User.username, User.full_name))}
    return Labels.of(app, people)


def message_data(context: WebContext, app: App, message_id: int) -> dict[str, Any]:
    """The message page's values; call it in a worker thread (it parses the message).

    Raises HTTPException 404 when the message does not exist.
    """
    with context.db.session(readonly=True) as session:
        message = session.get(InboxMessage, message_id)
        if message is None:
            raise HTTPException(404, "No existe ese mensaje.")
        session.expunge(message)
        events = session.scalars(
            select(CaseEvent)
            .where(CaseEvent.inbox_message_id == message_id)
            .order_by(CaseEvent.at, CaseEvent.id)
        ).all()
        replies_sent = session.scalars(
            select(OutboxMessage).where(OutboxMessage.inbox_message_id == message_id)
        ).all()
        case = session.get(Case, message.case_id) if message.case_id else None
        labels = labels_of(session, app)
        for row in (*events, *replies_sent, *([case] if case else [])):
            session.expunge(row)
    limits = app.settings.limits
    parsed: ParsedMessage = parse_message(
        message.raw,
        max_parts=limits.max_parts,
        max_attachment_bytes=limits.max_attachment_bytes,
        max_text_chars=limits.max_text_chars,
    )
    reason = next((e.reason for e in reversed(events) if e.reason and e.kind != NOTE_KIND), "")
    return {
        "message": message,
        "parsed": parsed,
        "queued": in_queue(message),
        "reason": reason or message.last_error or "",
        "events": events,
        "notes": [e for e in events if e.kind == NOTE_KIND],
        "sent": replies_sent,
        "case": case,
        "tramites": sorted(labels.tramites.items(), key=lambda kv: kv[1]),
        "kind_names": KIND_NAMES,
        **labels.as_context(),
    }


def add_note(
    session: Session,
    text: str,
    actor: str,
    at: dt.datetime,
    *,
    case_id: int | None = None,
    inbox_message_id: int | None = None,
) -> bool:
    """Record an internal note (audit event kind 'nota'); False when the text is empty."""
    body = text.strip()[:MAX_NOTE]
    if not body:
        return False
    record(session, NOTE_KIND, body, at=at, actor=actor, case_id=case_id,
           inbox_message_id=inbox_message_id)  # fmt: skip
    return True


def headline(raw: bytes) -> tuple[str, str]:
    """(From, Subject) decoded (RFC 2047) from the first 64 KiB, for one queue line."""
    try:
        head = _HEADERS.parsebytes(raw[:65536])
        sender = _decoded(head.get("From", ""))
        return " ".join(sender.split()), " ".join(_decoded(head.get("Subject", "")).split()) or (
            "(sin asunto)"
        )
    except Exception:  # hostile headers: the queue still shows the line
        return "", "(cabeceras ilegibles)"


def _decoded(value: object) -> str:
    if not value:
        return ""
    return str(email.header.make_header(email.header.decode_header(str(value))))
