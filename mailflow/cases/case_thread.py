"""A case's mail thread: its "in" and "out" entries, and the Thread a reply answers."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, event, select
from sqlalchemy.orm import Session

from mailflow.mail.outgoing import Thread
from mailflow.store.bulkrows import SEES_PENDING, add_row, kept_rows, pending
from mailflow.store.models import Case, CaseMessage
from mailflow.store.txcache import tx_info

_CASE_MESSAGES = cast(Table, CaseMessage.__table__)
_FRESH_THREADS = "effects.fresh_threads"


def fresh_thread(session: Session, case: Case) -> None:
    """Note that `case` was created in `session`'s transaction: every entry of its thread is
    then one `add_case_message` added in this transaction, so `thread_of` reads them from
    memory (mailflow.store.bulkrows.kept_rows) instead of the database. A CaseMessage added through
    the ORM for it takes the note back (the query is then needed)."""
    fresh = tx_info(session).setdefault(_FRESH_THREADS, {})
    fresh[case.id] = case
    if not session.info.get(_FRESH_THREADS):
        session.info[_FRESH_THREADS] = True
        event.listen(session, "transient_to_pending", _orm_thread_entry)


def _orm_thread_entry(session: Session, instance: object) -> None:
    if isinstance(instance, CaseMessage):
        tx_info(session).get(_FRESH_THREADS, {}).pop(instance.case_id, None)


def fresh_thread_inbox_ids(session: Session, case: Case) -> set[int] | None:
    """The ids of the inbox messages in the thread of `case` when it was created in this
    transaction (`fresh_thread`: every entry is known without the database); else None."""
    if tx_info(session).get(_FRESH_THREADS, {}).get(case.id) is not case:
        return None
    rows = kept_rows(session, _CASE_MESSAGES, "case_id", case.id)
    return {r["inbox_message_id"] for r in rows if r["inbox_message_id"] is not None}


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
    """Add one entry ("in" or "out") to a case's thread (queued: mailflow.store.bulkrows)."""
    add_row(session, _CASE_MESSAGES, {
        "case_id": case_id, "direction": direction, "inbox_message_id": inbox_message_id,
        "outbox_id": outbox_id, "message_id": message_id, "at": at,
    }, kept=True)  # fmt: skip
