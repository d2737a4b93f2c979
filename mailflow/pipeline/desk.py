"""Staff's decisions on an inbox message, from the desk: read it as a given procedure,
classify it as one, or link it to a case it names."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from mailflow.cases.effects import add_flags
from mailflow.errors import MailflowError
from mailflow.mail.authentication import authenticate
from mailflow.pipeline.followups import subsanar
from mailflow.pipeline.new_request import new_request
from mailflow.pipeline.outcome import Outcome, finish, record_inbound
from mailflow.runners.reading import DecideAs, Reading, read_message
from mailflow.store.audit import record
from mailflow.store.models import Case, InboxMessage

if TYPE_CHECKING:
    from mailflow.app import App


def read_as(app: App, row: InboxMessage, tramite: str) -> Reading:
    """Read `row` as if its subject were `tramite`'s official ASUNTO (outside transactions);
    returns the Reading (its `exceeded` set when over the per-message budget)."""
    subject = app.catalogue.get(tramite).subject
    return read_message(app, row.raw, DecideAs(subject=subject, received=row.arrived_at))


def classify_as(
    app: App,
    session: Session,
    row: InboxMessage,
    tramite: str,
    now: dt.datetime,
    reading: Reading | None = None,
) -> Outcome:
    """Staff decided the procedure: read the message as if its subject were the official ASUNTO,
    so fields, requirements and signature are assessed exactly as for a well-titled request.
    `reading` is `read_as(app, row, tramite)` made before the transaction, else made here.
    Finishes `row` in `session`'s transaction and returns its Outcome; MailflowError if the
    message cannot be read, or not as `tramite`."""
    official = app.catalogue.get(tramite).subject
    if reading is None or reading.decision_for(official) is None:
        reading = read_as(app, row, tramite)
    if reading.msg is None or reading.decision is None:
        raise MailflowError(reading.exceeded or "el mensaje no pudo leerse")
    decision = reading.decision
    if decision.tramite != tramite:
        raise MailflowError(f"el mensaje no pudo leerse como {app.catalogue.get(tramite).name}")
    outcome = new_request(app, session, row, reading.msg, decision, now)
    finish(session, row, outcome, now)
    return outcome


def link_to_case(
    app: App, session: Session, row: InboxMessage, case: Case, *, actor: str, now: dt.datetime
) -> Outcome:
    """Staff decided that a message naming `case` from another address (a lawyer, an NGO, a
    relative) belongs to it. It counts from its own receipt time (`row.arrived_at`), not from
    when staff linked it: an answer to an observation is in time if it arrived by the last
    day of the subsanación window. In `session`'s transaction; MailflowError if the message
    already belongs to a case."""
    if row.case_id is not None:
        raise MailflowError("el mensaje ya pertenece a un expediente")
    reading = read_as(app, row, case.tramite)
    msg = reading.msg
    if msg is None:
        raise MailflowError(reading.exceeded or "el mensaje no pudo leerse")
    record_inbound(session, case, row, msg, now)
    received = app.calendario.legal_receipt_day(row.arrived_at)
    record(
        session,
        "personal",
        f"Mensaje de {msg.sender or 'remitente desconocido'} vinculado al expediente "
        f"{case.number} por el personal; cuenta desde su recepción el {received.isoformat()}.",
        at=now,
        actor=actor,
        case_id=case.id,
        inbox_message_id=row.id,
        data={"received_at": row.arrived_at.isoformat()},
    )
    if case.state == "observado":
        until = (case.sla or {}).get("subsanacion_deadline")
        late = until is not None and received > dt.date.fromisoformat(until)
        sender_auth = authenticate(msg, app.settings.security.authserv_id)
        outcome = subsanar(app, session, row, reading, case, now, sender_auth, window_expired=late)
    else:
        add_flags(case, ["mensaje_nuevo"])
        outcome = Outcome("review", case.tramite, case.id)
    finish(session, row, outcome, now)
    return outcome
