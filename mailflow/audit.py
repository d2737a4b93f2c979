"""The audit trail: one way to append an event (who, what, why) to case_events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from mailflow.models import CaseEvent

SYSTEM = "sistema"  # the actor of everything the machine decides by itself


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
) -> CaseEvent:
    """Add one append-only event to the session (the caller's transaction) and return it."""
    row = CaseEvent(
        case_id=case_id,
        inbox_message_id=inbox_message_id,
        at=at,
        actor=actor,
        kind=kind,
        event=event,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        data=data or {},
    )
    session.add(row)
    return row
