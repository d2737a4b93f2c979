"""What a case learns from the sender: a message it queued was accepted by the next hop."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from mailflow import deadlines
from mailflow.audit import record
from mailflow.channel import MIGRACIONES_KINDS
from mailflow.models import Case, OutboxMessage

log = logging.getLogger(__name__)
DELIVERY_ACCEPTED = "entrega_aceptada"
"""The timer kind (and machine event) fired when a product's mail was accepted."""
PRODUCT_KINDS = ("oficio_migraciones", "oficio_enviado", "resuelto")
"""Outbox kinds whose acceptance is a case event: the oficio to Migraciones, the applicant's
copy, and the reply that resolves a procedure (its arrival time is what "atendido" means)."""


def on_accepted(session: Session, outbox_row: OutboxMessage, now: dt.datetime) -> None:
    """The SMTP server accepted `outbox_row`: called by the sender in the same transaction that
    records the 250 (and by the sent-journal replay), so it happens exactly once per row.

    Never raises: a failure here is logged and rolled back to a savepoint, so "sent" is still
    recorded and the mail is not sent twice (the case then waits for staff, visibly).
    """
    try:
        with session.begin_nested():
            on_product_accepted(session, outbox_row, now)
    except Exception:  # recording "sent" matters more than the follow-up
        log.exception("envío %s aceptado: no se pudo avisar a su expediente", outbox_row.id)


def on_product_accepted(session: Session, outbox_row: OutboxMessage, now: dt.datetime) -> None:
    """Schedule the case's `entrega_aceptada` event for an accepted oficio or applicant copy.

    The event itself is fired by the sweep (it needs the whole app: machines, templates); the
    timer row is written here, so a crash between the 250 and the event loses nothing. Rows of
    other kinds, and rows without a case, are left alone. Runs in the caller's transaction.
    """
    if outbox_row.case_id is None or outbox_row.kind not in PRODUCT_KINDS + MIGRACIONES_KINDS:
        return
    case = session.get(Case, outbox_row.case_id)
    if case is None:
        return
    who = "Migraciones" if outbox_row.kind in MIGRACIONES_KINDS else "el solicitante"
    record(
        session,
        "delivery_accepted",
        f"El servidor de correo aceptó el envío a {who} ({outbox_row.to_addr})",
        at=now,
        case_id=case.id,
        data={"outbox_id": outbox_row.id, "kind": outbox_row.kind},
    )
    if outbox_row.kind in PRODUCT_KINDS:
        # one timer per accepted row (timers are unique per case, kind and due instant)
        due = min(now, outbox_row.created_at) - dt.timedelta(microseconds=outbox_row.id % 10**6)
        deadlines.schedule(session, case, DELIVERY_ACCEPTED, due)
