"""One run of a transition's effects: what the caller adds, where traces go, the audit entry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailflow.documents.templates import ReceivedFile
from mailflow.store.audit import SYSTEM, record
from mailflow.store.models import Case, CaseEvent, Document, OutboxMessage

if TYPE_CHECKING:
    from mailflow.app import App


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
        """True when the system fired the event (actor "sistema"), False for a staff action."""
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
