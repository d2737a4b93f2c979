"""What the pipeline decided for one inbox message, and the writes every route shares.

The lowest of the pipeline's modules (`pipeline` routes, `replies` and `request` handle a
follow-up or a new request, `staff` runs staff's decisions): it imports none of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, inspect, update
from sqlalchemy.orm import Session

from mailflow.cases.effects import add_case_message
from mailflow.clock.deadlines import queue_held_timers
from mailflow.documents.templates import ReceivedFile
from mailflow.intake.decision import Decision
from mailflow.mail.message import ParsedMessage
from mailflow.store import coreflush
from mailflow.store.audit import record
from mailflow.store.bulkrows import updated_without_orm
from mailflow.store.models import Case, InboxMessage


@dataclass(frozen=True)
class Outcome:
    """What happened to a message: the inbox row's disposition, procedure and case."""

    disposition: str
    tramite: str | None = None
    case_id: int | None = None


# built once (its SQL cache key is then computed once too); values bound per call
_INBOX = cast(Table, InboxMessage.__table__)
_OUTCOME = ("status", "disposition", "tramite", "case_id", "processed_at")
_CLAIM = ("claimed_by", "claimed_until")


def _finish_statement(keys: tuple[str, ...]) -> Update:
    return (
        update(_INBOX)
        .where(_INBOX.c.id == bindparam("row_id"))
        .values({k: bindparam(k) for k in keys})
    )


_FINISH = _finish_statement(_OUTCOME)
_FINISH_CLAIMED = _finish_statement(_OUTCOME + _CLAIM)


def finish(session: Session, row: InboxMessage, outcome: Outcome, now: dt.datetime) -> None:
    """Mark `row` done with `outcome` (disposition, tramite, case id, processed at `now`) and
    flush the message's last writes in `session` (its new timers are queued: see below).
    A row being processed under a worker's claim (status "processing") is released from it
    in the same UPDATE (claimed_by and claimed_until cleared, as the inbox does once the row
    is written: mailflow.runners.inbox_claims). Returns nothing. Raises StaleDataError when
    the message's case was changed by someone else since it was loaded (optimistic lock on
    Case.lock_version): the caller's (sub)transaction rolls back."""
    values: dict[str, Any] = {
        "status": "done",
        "disposition": outcome.disposition,
        "tramite": outcome.tramite,
        "case_id": outcome.case_id,
        "processed_at": now,
    }
    claimed = row.status == "processing"
    if claimed:
        values.update(claimed_by=None, claimed_until=None)
    if inspect(row).persistent:  # one UPDATE on the connection, not the unit of work's
        statement = _FINISH_CLAIMED if claimed else _FINISH
        session.connection().execute(statement, {"row_id": row.id, **values})
        updated_without_orm(session, row, values)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    # the timers of the cases this message opened go with the transaction's other queued
    # rows (one executemany, at the latest before the commit); the message's other last
    # writes (its case's transition: apply_event(flush=False)) reach the database here,
    # before the caller goes on: the changed columns of its case (and of any other changed
    # row) with one UPDATE each, anything else in one ORM flush
    queue_held_timers(session)
    coreflush.flush(session)


def record_event(
    session: Session,
    row: InboxMessage,
    now: dt.datetime,
    kind: str,
    reason: str,
    case_id: int | None = None,
    **data: Any,
) -> None:
    """Audit `kind` with `reason` (Spanish) for inbox message `row` at `now`, on `case_id` if
    given; the keyword arguments become the event's JSON data. Returns nothing."""
    record(session, kind, reason, at=now, case_id=case_id, inbox_message_id=row.id, data=data)


def record_inbound(
    session: Session, case: Case, row: InboxMessage, msg: ParsedMessage, now: dt.datetime
) -> None:
    """Add `msg` (inbox row `row`) to `case`'s thread as an inbound message at `now`; a message
    without a Message-ID gets one made from the row's hash. Returns nothing."""
    message_id = msg.message_id or f"sin-id.{row.sha256[:24]}@mailflow.invalid"
    add_case_message(
        session, case_id=case.id, direction="in", inbox_message_id=row.id,
        message_id=message_id, at=now,
    )  # fmt: skip


def received_files(msg: ParsedMessage) -> list[ReceivedFile]:
    """The attachments of `msg` as ReceivedFile (name, sha256, size in bytes), in order."""
    return [ReceivedFile(a.filename or "adjunto", a.sha256, a.size) for a in msg.attachments]


def machine_facts(decision: Decision) -> dict[str, Any]:
    """What the state machine's guards need from the decision (checks.signature_accepted):
    a dict of context overrides keyed by the machine's fact names."""
    return {
        "requirements_complete": not decision.missing,
        "signature_status": decision.signature.status,
        "signature_accepted": decision.signature_accepted,
        "escrito_presented": decision.escrito,
    }
