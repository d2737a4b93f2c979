"""Feedback from the sender to the cases: what follows when SMTP accepts or a message bounces.

The sender calls `on_accepted` in the transaction that records the server's 250 (after the
fsynced sent-journal mark, so nothing is sent twice), and `on_bounced` when a delivery fails
for good or a delivery report returns one of our messages. Each reaction is a small
self-contained function, so other reactions (e.g. oficios delivered to Migraciones) join the
two lists below without touching these.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mailflow.clock import deadlines, sla
from mailflow.clock.dias_habiles import Calendario
from mailflow.config import Settings
from mailflow.documents.channel import MIGRACIONES_KINDS
from mailflow.store.audit import record
from mailflow.store.models import Case, OutboxMessage
from mailflow.store.txcache import tx_info

log = logging.getLogger(__name__)
OBSERVATION_KINDS = frozenset({"observacion"})
DELIVERY_ACCEPTED = "entrega_aceptada"
"""The timer kind (and machine event) fired when a product's mail was accepted."""
PRODUCT_KINDS = ("oficio_migraciones", "oficio_enviado", "resuelto")
"""Outbox kinds whose acceptance is a case event: the oficio to Migraciones, the applicant's
copy, and the reply that resolves a procedure (its arrival time is what "atendido" means)."""
BOUNCED_FLAG = "notificacion_fallida"
BOUNCE_ERROR_CHARS = 500
_LOCKED = "delivery_events.locked_cases"

Reaction = Callable[[Session, Settings, OutboxMessage, dt.datetime, str], None]
Prepare = Callable[[Session, Settings, list[OutboxMessage], dt.datetime], None]


def on_accepted(session: Session, settings: Settings, row: OutboxMessage, now: dt.datetime) -> None:
    """The SMTP server accepted `row` at `now` (UTC): run every acceptance reaction in the
    caller's transaction (the one that records the 250, or the sent-journal replay), so each
    happens exactly once per row.

    Never raises: a reaction that fails is logged and rolled back to its savepoint, so "sent" is
    still recorded and the mail is not sent twice (the case then waits for staff, visibly).
    A reaction listed in APPLIES is skipped, without a savepoint or any query, when its test
    says the row cannot concern it (most replies: no reaction at all).
    """
    for reaction in ACCEPTED:
        applies = APPLIES.get(reaction)
        if applies is not None and not applies(row):
            continue
        try:
            with session.begin_nested():
                reaction(session, settings, row, now, "")
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise  # the connection is gone: the caller records the 250 again from scratch
            log.exception("envío %s aceptado: no se pudo avisar a su expediente", row.id)
        except Exception:  # recording "sent" matters more than the follow-up
            log.exception("envío %s aceptado: no se pudo avisar a su expediente", row.id)


def prepare_accepted(
    session: Session, settings: Settings, rows: list[OutboxMessage], now: dt.datetime
) -> None:
    """Before `on_accepted` runs for each of `rows` (accepted together at `now`), load with a
    few queries what their reactions will read (PREPARE: e.g. the observed cases, locked, and
    their subsanación timers) instead of a few queries per row. Writes nothing; the reactions'
    effects stay the same. Never raises but when the connection is gone: a preparation that
    fails is logged and rolled back to its savepoint, and the reactions then query for
    themselves."""
    for reaction in ACCEPTED:
        prepare = PREPARE.get(reaction)
        applies = APPLIES.get(reaction)
        concerned = [row for row in rows if applies is None or applies(row)]
        if prepare is None or not concerned:
            continue
        try:
            with session.begin_nested():
                prepare(session, settings, concerned, now)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            log.exception("envíos aceptados: no se pudo preparar %s", reaction.__name__)
        except Exception:  # the reactions then load what they need themselves
            log.exception("envíos aceptados: no se pudo preparar %s", reaction.__name__)


def on_bounced(
    session: Session, settings: Settings, row: OutboxMessage, now: dt.datetime, reason: str
) -> None:
    """`row` did not reach its recipient (a bounce, or delivery given up): run every bounce
    reaction in the caller's transaction. `reason` is shown to staff, in Spanish."""
    for reaction in BOUNCED:
        reaction(session, settings, row, now, reason)


def _case(session: Session, row: OutboxMessage) -> Case | None:
    """The row's case, locked for update and read afresh (or as `_lock_cases` did in this
    transaction: locked then, and kept current by the session since)."""
    if row.case_id is None:
        return None
    locked: dict[int, Case] | None = tx_info(session).get(_LOCKED)
    if locked is not None:
        case = locked.get(row.case_id)
        if case is not None and case in session:
            return case
    stmt = select(Case).where(Case.id == row.case_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


def _lock_cases(session: Session, case_ids: list[int]) -> list[Case]:
    """Lock and read afresh the cases `case_ids` with one query (in id order), and keep them
    for `_case` for the rest of the transaction."""
    stmt = select(Case).where(Case.id.in_(sorted(set(case_ids)))).order_by(Case.id)
    stmt = stmt.with_for_update().execution_options(populate_existing=True)
    cases = list(session.scalars(stmt))
    tx_info(session).setdefault(_LOCKED, {}).update({case.id: case for case in cases})
    return cases


def _subsanacion_window(
    session: Session, settings: Settings, now: dt.datetime
) -> tuple[Calendario, dt.date]:
    """(the calendar, the last day of a subsanación window starting at `now`), computed once
    per session and instant (a batch of observations accepted together shares them)."""
    key = ("subsanacion_window", id(settings), now)
    found = session.info.get(key)
    if found is None:
        cal = Calendario.from_settings(settings.calendar)
        found = (cal, sla.subsanacion_deadline(cal, now, settings.sla.subsanacion_days))
        session.info[key] = found
    return found


def observation_delivered(
    session: Session, settings: Settings, row: OutboxMessage, now: dt.datetime, _: str
) -> None:
    """The subsanación window runs from when the observation was accepted by the SMTP server
    (its notification), not from when it was written: re-anchor the window's end on `now`."""
    if row.kind not in OBSERVATION_KINDS:
        return
    case = _case(session, row)
    if case is None or case.state != "observado":
        return
    cal, last_day = _subsanacion_window(session, settings, now)
    days = settings.sla.subsanacion_days
    deadlines.cancel(session, case, (deadlines.SUBSANACION,), now)
    ends = deadlines.local_instant(cal, last_day + dt.timedelta(days=1))
    deadlines.schedule(session, case, deadlines.SUBSANACION, ends)
    case.sla = {
        **(case.sla or {}),
        "subsanacion_deadline": last_day.isoformat(),
        "observacion_entregada": now.isoformat(),
    }
    record(
        session,
        "sla",
        f"Observación entregada al servidor de correo el {cal.local(now):%d/%m/%Y %H:%M}: "
        f"el plazo de subsanación de {days} días hábiles corre desde entonces, hasta el "
        f"{last_day.isoformat()}.",
        at=now,
        case_id=case.id,
        data={
            "op": "subsanacion_desde_entrega",
            "outbox_id": row.id,
            "until": last_day.isoformat(),
        },
    )


def prepare_observations(
    session: Session, settings: Settings, rows: list[OutboxMessage], now: dt.datetime
) -> None:
    """Before `observation_delivered` runs for each of `rows`: lock and load their cases with
    one query, and the subsanación timers of those still observed with another."""
    case_ids = [r.case_id for r in rows if r.kind in OBSERVATION_KINDS and r.case_id is not None]
    if not case_ids:
        return
    cases = _lock_cases(session, case_ids)
    observed = [case.id for case in cases if case.state == "observado"]
    deadlines.load_timers(session, observed, deadlines.SUBSANACION)


def observation_undelivered(session: Session, case: Case) -> bool:
    """Whether the case's latest observation has not been accepted by the SMTP server yet
    (then its subsanación window has not started and must not expire)."""
    status = session.scalar(
        select(OutboxMessage.status)
        .where(OutboxMessage.case_id == case.id, OutboxMessage.kind.in_(OBSERVATION_KINDS))
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )
    return status is not None and status != "sent"


def delivery_failed(
    session: Session, settings: Settings, row: OutboxMessage, now: dt.datetime, reason: str
) -> None:
    """Mark the outbox row failed (it was not delivered, whatever SMTP said first), flag its
    case for staff and stop the subsanación clock an observation started."""
    row.status = "failed"
    row.last_error = f"No entregado: {reason}"[:BOUNCE_ERROR_CHARS]
    case = _case(session, row)
    text = (
        f"No entregado a {row.to_addr}: «{row.subject}». {reason[:300]} "
        "No cuenta como notificación; revise la dirección y vuelva a comunicarse."
    )
    if case is None:  # an acknowledgment without a case: nothing waits on its notification
        return
    if BOUNCED_FLAG not in (case.flags or []):
        case.flags = [*(case.flags or []), BOUNCED_FLAG]
    if row.kind in OBSERVATION_KINDS and case.state == "observado":
        stopped = deadlines.cancel(session, case, (deadlines.SUBSANACION,), now)
        case.sla = {**(case.sla or {}), "subsanacion_deadline": None}
        text += (
            " El plazo de subsanación que abría esta observación queda detenido"
            f"{'' if stopped else ' (no había plazo pendiente)'}: el solicitante no fue notificado."
        )
    record(
        session,
        "exception",
        text,
        at=now,
        case_id=case.id,
        event="entrega_fallida",
        data={"outbox_id": row.id, "kind": row.kind, "flag": BOUNCED_FLAG},
    )


def product_accepted(
    session: Session, settings: Settings, outbox_row: OutboxMessage, now: dt.datetime, _: str
) -> None:
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


def _is_observation(row: OutboxMessage) -> bool:
    return row.kind in OBSERVATION_KINDS


def _is_product(row: OutboxMessage) -> bool:
    return row.case_id is not None and row.kind in PRODUCT_KINDS + MIGRACIONES_KINDS


ACCEPTED: tuple[Reaction, ...] = (observation_delivered, product_accepted)
APPLIES: dict[Reaction, Callable[[OutboxMessage], bool]] = {
    observation_delivered: _is_observation,
    product_accepted: _is_product,
}
"""For a reaction in ACCEPTED: whether an accepted row can concern it, decided from the row
alone (the same test the reaction starts with); a reaction not listed here always runs."""
PREPARE: dict[Reaction, Prepare] = {observation_delivered: prepare_observations}
"""For a reaction in ACCEPTED: what `prepare_accepted` runs once, before the reaction runs
for each row, with the rows that concern it (loads what the reaction reads; no writes)."""
BOUNCED: tuple[Reaction, ...] = (delivery_failed,)
