"""Mail from Migraciones (config `migraciones.address`): never acknowledged; a reply naming an
oficio number or a case joins that case for staff."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.cases.effects import add_flags
from mailflow.config import Settings
from mailflow.mail.message import ParsedMessage
from mailflow.store.audit import record
from mailflow.store.models import Case, CaseMessage, Document, InboxMessage
from mailflow.triage.case_reference import referenced_case_id
from mailflow.vocabulary import AuditKind

if TYPE_CHECKING:
    from mailflow.app import App

FLAG = "respuesta_migraciones"
# "OFICIO N° 000123-2026-CEPR/MRE", "oficio 123-2026": the correlative and the year.
OFICIO_NUMBER = re.compile(r"\b0*(\d{1,6})\s*-\s*(\d{4})\s*-\s*[A-Z]", re.IGNORECASE)
TEXT_WINDOW = 20_000


def from_migraciones(settings: Settings, msg: ParsedMessage) -> bool:
    """Whether the message comes from the configured Migraciones address."""
    address = settings.migraciones.address
    return bool(address and msg.sender and msg.sender.lower() == address)


def named_case(session: Session, msg: ParsedMessage) -> Case | None:
    """The case a Migraciones message is about: threaded on one of our messages, else a case
    number (EXP-…) or an oficio number in the subject or text."""
    text = f"{msg.subject}\n{msg.text[:TEXT_WINDOW]}"
    case_id = referenced_case_id(session, (*msg.in_reply_to, *msg.references), text)
    if case_id is None:
        for seq, year in OFICIO_NUMBER.findall(text)[:20]:
            prefix = f"{int(seq):06d}-{year}-"
            case_id = session.scalar(
                select(Document.case_id)
                .where(Document.kind == "oficio", Document.number.startswith(prefix))
                .limit(1)
            )
            if case_id is not None:
                break
    if case_id is None:
        return None
    stmt = select(Case).where(Case.id == case_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def join_migraciones_reply(
    session: Session, app: App, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> int | None:
    """Record a message from Migraciones, without answering it: joined to the case it names
    (flagged for staff), or left in the staff queue. Returns the case id, or None."""
    case = named_case(session, msg)
    if case is None:
        record(
            session,
            AuditKind.EXCEPTION,
            "Mensaje de Migraciones que no menciona un oficio ni un expediente conocido: "
            "revíselo (no se respondió).",
            at=now,
            inbox_message_id=row.id,
            data={"sender": msg.sender},
        )
        return None
    session.add(
        CaseMessage(
            case_id=case.id,
            direction="in",
            inbox_message_id=row.id,
            message_id=msg.message_id or f"sin-id.{row.sha256[:24]}@mailflow.invalid",
            at=now,
        )
    )
    add_flags(case, [FLAG])
    record(
        session,
        AuditKind.MESSAGE,
        f"Respuesta de Migraciones añadida al expediente {case.number} para el personal "
        "(no se respondió automáticamente)",
        at=now,
        case_id=case.id,
        inbox_message_id=row.id,
        data={"subject": msg.subject[:200]},
    )
    return case.id
