"""The desk's door to the case engine: staff actions go through `cases.apply_event` only."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session
from starlette.requests import Request

from mailflow.app import App
from mailflow.runners.reading import Reading
from mailflow.store.audit import record
from mailflow.store.models import Case, InboxMessage
from mailflow.vocabulary import AuditKind


def app_of(request: Request) -> App:
    """The one App (catalogue, machines, templates ...) of this web app, from its WebContext
    on `request.app.state.mailflow` (set by `web.create_app`)."""
    app = request.app.state.mailflow.app
    assert isinstance(app, App)
    return app


def fire(
    session: Session,
    app: App,
    case: Case,
    event: str,
    *,
    actor: str,
    now: dt.datetime,
    reason: str,
) -> None:
    """Fire a staff event on a case (IllegalTransition and other MailflowError propagate)."""
    from mailflow.cases.core import apply_event

    apply_event(session, app, case, event, actor=actor, now=now, reason=reason)


def read_for_desk(
    app: App, message: InboxMessage, now: dt.datetime, tramite: str | None = None
) -> Reading:
    """Parse and decide `message` for a desk action, outside any write transaction (in the
    sandbox, under the per-message budget)."""
    from mailflow.pipeline.desk import read_as
    from mailflow.pipeline.route import read_inbox_message

    if tramite is None:
        return read_inbox_message(app, message, now)
    return read_as(app, message, tramite)


def process(
    session: Session,
    app: App,
    message: InboxMessage,
    *,
    actor: str,
    now: dt.datetime,
    tramite: str | None = None,
    reading: Reading | None = None,
) -> None:
    """Run an inbox message through the pipeline again, optionally forcing its procedure.

    Forcing reads the message as if its subject were the procedure's official ASUNTO, so the
    fields, requirements and signature are assessed exactly as for a well-titled request.
    `reading` (from `read_for_desk`, made before the write transaction) saves reading it here.
    """
    from mailflow.pipeline.desk import classify_as
    from mailflow.pipeline.route import reprocess

    if tramite is None:
        reprocess(app, session, message, now, reading)
    else:
        classify_as(app, session, message, tramite, now, reading)
    what = f"Clasificado como {app.catalogue.get(tramite).name}" if tramite else "Reprocesado"
    record(
        session,
        AuditKind.PERSONAL,
        f"{what} por el personal.",
        at=now,
        actor=actor,
        case_id=message.case_id,
        inbox_message_id=message.id,
        data={"action": "clasificar" if tramite else "reprocesar", "tramite": tramite},
    )
    session.flush()
