"""Everything the case page shows: thread (as text), fields, signature, documents, SLA, audit."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.responses import Response

from mailflow.app import App
from mailflow.clock.explain import explain_deadline
from mailflow.mail.parse import parse_message
from mailflow.store.models import (
    Case,
    CaseEvent,
    CaseMessage,
    Document,
    InboxMessage,
    OutboxMessage,
)
from mailflow.vocabulary import AuditKind
from mailflow.web.confirm import transition_summary
from mailflow.web.labels import EVENTS, WARNING_FLAGS, Labels
from mailflow.web.plazo import left_text, plazo

KIND_NAMES = EVENTS  # one vocabulary: mailflow.web.labels


def case_file(
    session: Session, app: App, case: Case, now: dt.datetime, labels: Labels | None = None
) -> dict[str, Any]:
    """The template values of the case page (labels: the vocabulary with staff names)."""
    labels = labels or Labels.of(app)
    zone = ZoneInfo(app.settings.calendar.timezone)
    machine = app.machines.get(case.machine)
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at, CaseEvent.id)
    ).all()
    state = (
        machine.state(case.state)
        if machine and case.state in {s.name for s in machine.states}
        else None
    )
    tramite = app.catalogue.tramites.get(case.tramite)
    today = now.astimezone(zone).date()
    return {
        "case": case,
        "tramite_name": tramite.name if tramite else case.tramite,
        "state_label": state.label if state else case.state,
        "final": bool(state and state.final),
        "actions": machine.allowed_events(case.state, "staff") if machine else [],
        "thread": _thread(session, case, app),
        "fields": _fields(case, app),
        "decision": _decision(events),
        "documents": session.scalars(
            select(Document).where(Document.case_id == case.id).order_by(Document.issued_at)
        ).all(),
        "sla": plazo(app.calendario_de(case.office), case, today, state.sla if state else None),
        "left_text": left_text,
        "flags": [(f, labels.flag(f), f in WARNING_FLAGS) for f in case.flags or []],
        "notes": [e for e in events if e.kind == AuditKind.NOTA],
        "summaries": {
            t.event: transition_summary(t, case.applicant_email, labels)
            for t in (machine.allowed_events(case.state, "staff") if machine else [])
        },
        "explanation": explain_deadline(session, case, app.calendario_de(case.office)),
        "events": events,
        "state_labels": {s.name: s.label for s in machine.states} if machine else {},
        "kind_names": KIND_NAMES,
        "local": lambda at: at.astimezone(zone).strftime("%d/%m/%Y %H:%M"),
        **labels.as_context(),
    }


def _fields(case: Case, app: App) -> list[dict[str, Any]]:
    out = []
    for key, value in case.fields.items():
        entry = value if isinstance(value, dict) else {"value": value}
        out.append({"id": key, "label": app.vocabulary.label(key), **entry})
    return out


def _decision(events: Any) -> dict[str, Any] | None:
    """The latest intake decision recorded for the case (fields, missing, signature)."""
    for event in reversed(list(events)):
        found = event.data.get("decision") if isinstance(event.data, dict) else None
        if isinstance(found, dict):
            return found
    return None


def _thread(session: Session, case: Case, app: App) -> list[dict[str, Any]]:
    links = session.scalars(select(CaseMessage).where(CaseMessage.case_id == case.id)).all()
    inbox_ids = {link.inbox_message_id for link in links if link.inbox_message_id}
    outbox_ids = {link.outbox_id for link in links if link.outbox_id}
    inbox = session.scalars(
        select(InboxMessage).where(
            or_(InboxMessage.case_id == case.id, InboxMessage.id.in_(inbox_ids))
        )
    ).all()
    outbox = session.scalars(
        select(OutboxMessage).where(
            or_(OutboxMessage.case_id == case.id, OutboxMessage.id.in_(outbox_ids))
        )
    ).all()
    limits = app.settings.limits
    items: list[dict[str, Any]] = []
    for message, direction, at in [(m, "in", m.arrived_at) for m in inbox] + [
        (o, "out", o.created_at) for o in outbox
    ]:
        parsed = parse_message(
            message.raw,
            max_parts=limits.max_parts,
            max_attachment_bytes=limits.max_attachment_bytes,
            max_text_chars=limits.max_text_chars,
        )
        items.append(
            {
                "id": message.id,
                "direction": direction,
                "at": at,
                "sender": parsed.sender,
                "to": ", ".join(parsed.to),
                "subject": parsed.subject or "(sin asunto)",
                "text": parsed.text,  # plain text only: HTML was converted, never rendered
                "attachments": [(a.filename, a.size) for a in parsed.attachments]
                if direction == "in"
                else [],
                "status": getattr(message, "status", ""),
            }
        )
    items.sort(key=lambda item: item["at"])
    return items


def download_attachment(session: Session, case_id: int, message_id: int, index: int) -> Response:
    """Attachment `index` of an inbound message of the case, always as a download."""
    message = session.get(InboxMessage, message_id)
    linked = message is not None and (
        message.case_id == case_id
        or session.scalar(
            select(CaseMessage.id).where(
                CaseMessage.case_id == case_id, CaseMessage.inbox_message_id == message_id
            )
        )
        is not None
    )
    if message is None or not linked:
        raise HTTPException(404, "No existe ese adjunto.")
    attachments = parse_message(message.raw).attachments
    if not 0 <= index < len(attachments):
        raise HTTPException(404, "No existe ese adjunto.")
    item = attachments[index]
    return _download(item.data, item.filename, item.content_type)


def download_document(session: Session, data_dir: Path, case_id: int, doc_id: int) -> Response:
    """An issued document of the case (PDF from the content-addressed store)."""
    doc = session.get(Document, doc_id)
    if doc is None or doc.case_id != case_id:
        raise HTTPException(404, "No existe ese documento.")
    path = Path(doc.path) if Path(doc.path).is_absolute() else data_dir / doc.path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HTTPException(404, "El archivo del documento no está disponible.") from exc
    return _download(data, f"{doc.number or doc.kind}.pdf", "application/pdf")


INLINE_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}
)


def inline_attachment(raw: bytes, index: int) -> Response:
    """Attachment `index` of a raw message, shown in the browser when it is a PDF, an image or
    plain text (sandboxed by CSP, never HTML), else downloaded. HTTP 404 when absent."""
    attachments = parse_message(raw).attachments
    if not 0 <= index < len(attachments):
        raise HTTPException(404, "No existe ese adjunto.")
    item = attachments[index]
    kind = "application/pdf" if item.is_pdf else item.content_type.lower()
    if kind not in INLINE_TYPES:
        return _download(item.data, item.filename, item.content_type)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", item.filename).strip("._") or "adjunto"
    headers = {
        "Content-Disposition": f'inline; filename="{safe}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if kind != "application/pdf":  # Chromium's PDF viewer does not run in a sandboxed page
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'"
    media = "text/plain; charset=utf-8" if kind == "text/plain" else kind
    return Response(item.data, media_type=media, headers=headers)


def _download(data: bytes, filename: str, content_type: str) -> Response:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "adjunto"
    kind = "application/pdf" if content_type == "application/pdf" else "application/octet-stream"
    headers = {
        "Content-Disposition": f'attachment; filename="{safe}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "no-store",
    }
    return Response(data, media_type=kind, headers=headers)
