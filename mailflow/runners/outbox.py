"""Undelivered replies: which ones wait or failed, and sending them again (desk and CLI)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.errors import MailflowError
from mailflow.store.audit import record
from mailflow.store.models import OutboxMessage

UNDELIVERED = ("failed", "pending", "sending")


def undelivered(session: Session, limit: int = 200) -> list[OutboxMessage]:
    """Replies not delivered yet that tried at least once, failed ones first, oldest first."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status.in_(UNDELIVERED), OutboxMessage.attempts > 0)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
        .limit(limit)
    ).all()
    return sorted(rows, key=lambda r: r.status != "failed")


def resend(
    session: Session, ids: Sequence[int] | None, *, actor: str, now: dt.datetime
) -> list[int]:
    """Make replies due again now, in the caller's transaction; return the ids made due.

    `ids` None means every failed reply. A reply already sent is refused (MailflowError):
    sending it again would duplicate it. Its Message-ID and bytes stay as queued, so the
    recipient's server can recognise a repeat. The try count restarts (the delivery history
    is kept) and an audit event names who asked.
    """
    if ids is None:
        rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")))
    else:
        rows = []
        for row_id in ids:
            row = session.get(OutboxMessage, row_id)
            if row is None:
                raise MailflowError(f"no existe la respuesta {row_id}")
            if row.status == "sent":
                raise MailflowError(f"la respuesta {row_id} ya fue entregada; no se reenvía")
            rows.append(row)
    for row in rows:
        row.status = "pending"
        row.attempts = 0
        row.next_attempt_at = now
        record(
            session,
            "personal",
            f"Reenvío de la respuesta «{row.subject}» a {row.to_addr} solicitado",
            at=now,
            actor=actor,
            case_id=row.case_id,
            inbox_message_id=row.inbox_message_id,
            data={"action": "reenviar", "outbox_id": row.id, "last_error": row.last_error},
        )
    return [row.id for row in rows]
