"""Operational health: database reachable and migrated, backlogs, stuck or failed mail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from mailflow.app import App
from mailflow.models import InboxMessage, OutboxMessage

STALE_AFTER = dt.timedelta(minutes=10)  # waiting longer than this means something is stuck


def health(app: App, now: dt.datetime) -> dict[str, Any]:
    """A JSON-ready report; `ok` is False when mail waits too long or a delivery failed."""
    db = app.database
    report: dict[str, Any] = {"database": db.dialect, "migrated": db.is_current()}
    with db.session(readonly=True) as s:
        inbox = dict(
            s.execute(select(InboxMessage.status, func.count()).group_by(InboxMessage.status)).all()
        )
        outbox = dict(
            s.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ).all()
        )
        oldest_in = s.scalar(
            select(func.min(InboxMessage.arrived_at)).where(
                InboxMessage.status.in_(("new", "processing"))
            )
        )
        oldest_out = s.scalar(
            select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending")
        )
        review = s.scalar(
            select(func.count())
            .select_from(InboxMessage)
            .where(InboxMessage.disposition == "review", InboxMessage.case_id.is_(None))
        )
    report["inbox"] = {str(k): int(v) for k, v in inbox.items()}
    report["outbox"] = {str(k): int(v) for k, v in outbox.items()}
    report["exception_queue"] = int(review or 0) + int(inbox.get("set_aside", 0))
    problems: list[str] = []
    if not report["migrated"]:
        problems.append("la base de datos no está en la última migración (ejecute mailflow run)")
    if oldest_in is not None and now - oldest_in > STALE_AFTER:
        problems.append(f"hay correo entrante sin procesar desde {oldest_in.isoformat()}")
    if oldest_out is not None and now - oldest_out > STALE_AFTER:
        problems.append(f"hay respuestas sin enviar desde {oldest_out.isoformat()}")
    if outbox.get("failed"):
        problems.append(f"{outbox['failed']} respuestas no pudieron entregarse")
    report["problems"] = problems
    report["ok"] = not problems
    return report
