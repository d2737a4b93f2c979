"""The audit trail: one way to append an event (who, what, why) to case_events."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from mailflow.store.bulkrows import add_row, insert_now
from mailflow.store.models import CaseEvent

SYSTEM = "sistema"  # the actor of everything the machine decides by itself
_EVENTS = cast(Table, CaseEvent.__table__)


def _values(
    kind: str,
    reason: str,
    at: dt.datetime,
    actor: str,
    case_id: int | None,
    inbox_message_id: int | None,
    event: str | None,
    from_state: str | None,
    to_state: str | None,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "inbox_message_id": inbox_message_id,
        "at": at,
        "actor": actor,
        "kind": kind,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "reason": reason,
        "data": data or {},
    }


def record(
    session: Session,
    kind: str,
    reason: str,
    *,
    at: dt.datetime,
    actor: str = SYSTEM,
    case_id: int | None = None,
    inbox_message_id: int | None = None,
    event: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    data: dict[str, Any] | None = None,
    kept: bool = False,
) -> None:
    """Append one event in the caller's transaction (queued: mailflow.store.bulkrows inserts it,
    in order, before the commit or before any statement that reads case_events). `kept`: the
    transaction can read it back without a query (`bulkrows.kept_rows`)."""
    values = _values(
        kind, reason, at, actor, case_id, inbox_message_id, event, from_state, to_state, data
    )
    add_row(session, _EVENTS, values, kept=kept)


def record_now(
    session: Session,
    kind: str,
    reason: str,
    *,
    at: dt.datetime,
    actor: str = SYSTEM,
    case_id: int | None = None,
    inbox_message_id: int | None = None,
    event: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Like `record`, but inserted at once, in one statement with the events still queued
    (ahead of it, keeping their order; mailflow.store.bulkrows.insert_now): returns a
    detached CaseEvent carrying its new id, for effects that refer to it."""
    values = _values(
        kind, reason, at, actor, case_id, inbox_message_id, event, from_state, to_state, data
    )
    # it refers to rows already in the database only: straight on the connection (no
    # autoflush, no ORM statement overhead); the other tables' queued rows stay queued
    return CaseEvent(id=insert_now(session, _EVENTS, values), **values)
