"""Operational health: database reachable and migrated, backlogs, stuck or failed mail, keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from mailflow.app import App
from mailflow.store.models import InboxMessage, OutboxMessage

STALE_AFTER = dt.timedelta(minutes=10)  # waiting longer than this means something is stuck


def health(app: App, now: dt.datetime) -> dict[str, Any]:
    """A JSON-ready report; `ok` is False when mail waits too long, a delivery failed, the
    database is missing or unreachable, or documents cannot be signed. `warnings` (signing
    certificate expiring within 30 days, no trust roots, a loopback public_url while
    documents carry QR links) do not change `ok`. Never creates a database.
    """
    from mailflow.store.db import parse_url
    from mailflow.store.dbstatus import missing_database

    problems: list[str] = []
    warnings: list[str] = []
    report: dict[str, Any] = {
        "database": parse_url(app.settings.effective_database_url).get_backend_name()
    }
    missing = missing_database(app.settings)
    if missing:
        problems.append(missing)
        report["migrated"] = False
    else:
        try:
            report.update(_mail_status(app, now, problems))
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            problems.append(f"no se puede leer la base de datos: {detail}")
            report["migrated"] = False
    report.update(_key_status(app, now, problems, warnings))
    report["problems"] = problems
    report["warnings"] = warnings
    report["ok"] = not problems
    return report


def _mail_status(app: App, now: dt.datetime, problems: list[str]) -> dict[str, Any]:
    db = app.database
    report: dict[str, Any] = {"migrated": db.is_current()}
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
    if not report["migrated"]:
        problems.append("la base de datos no está en la última migración (ejecute mailflow run)")
    if oldest_in is not None and now - oldest_in > STALE_AFTER:
        problems.append(f"hay correo entrante sin procesar desde {oldest_in.isoformat()}")
    if oldest_out is not None and now - oldest_out > STALE_AFTER:
        problems.append(f"hay respuestas sin enviar desde {oldest_out.isoformat()}")
    if outbox.get("failed"):
        problems.append(f"{outbox['failed']} respuestas no pudieron entregarse")
    return report


def _key_status(
    app: App, now: dt.datetime, problems: list[str], warnings: list[str]
) -> dict[str, Any]:
    from mailflow.documents.certstatus import signing_status, trust_root_status
    from mailflow.errors import MailflowError
    from mailflow.ops.startup import PublicUrl, document_procedures

    report: dict[str, Any] = {}
    try:
        issuing = bool(document_procedures(app))
    except MailflowError as exc:
        problems.append(f"política: {exc}")
        issuing = False
    if issuing:
        report["signing"], p, w = signing_status(app.settings, now)
        problems += p
        warnings += w
        warnings += [f.message for f in PublicUrl().check(app, {})]
    report["trust_roots"], p, w = trust_root_status(app.settings)
    problems += p
    warnings += w
    return report
