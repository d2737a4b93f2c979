"""Fire due timers exactly once (subsanación expiry, reminders, escalations) and schedule it."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, CursorResult, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailflow.cases import followup
from mailflow.cases.core import apply_event, engine_event
from mailflow.cases.delivery_events import DELIVERY_ACCEPTED, observation_undelivered
from mailflow.cases.machines import IllegalTransition
from mailflow.clock import deadlines
from mailflow.store.audit import SYSTEM, record
from mailflow.store.db import advisory_lock, advisory_unlock, claim_rows
from mailflow.store.models import Case, Timer
from mailflow.vocabulary import AuditKind

if TYPE_CHECKING:
    from mailflow.app import App

log = logging.getLogger(__name__)
SWEEP_LOCK_KEY = 0x6D66_7377_6565_70  # "mfsweep": one scheduler leader per database
BATCH = 500
TIMER_REASONS = {
    deadlines.SUBSANACION: "Venció el plazo de subsanación",
    deadlines.REMINDER: "Recordatorio: el plazo del expediente está por vencer",
    deadlines.ESCALATION: "Plazo vencido: se avisa a los responsables",
    DELIVERY_ACCEPTED: "El servidor de correo aceptó el envío del producto",
}


def run_sweep(
    app: App, now: dt.datetime, worker_id: str, kinds: tuple[str, ...] | None = None
) -> int:
    """Fire every timer due by `now` (only of `kinds` when given), one transaction per timer;
    returns how many this worker fired. A timer is claimed with a conditional UPDATE, so
    concurrent sweeps (threads or processes) fire each timer once; a timer whose action fails
    stays due for the next sweep."""
    db = app.database
    fired = 0
    failed: set[int] = set()
    while True:
        with db.session(readonly=True) as session:
            ids = session.scalars(
                select(Timer.id)
                .where(
                    Timer.fired_at.is_(None),
                    Timer.cancelled_at.is_(None),
                    Timer.due_at <= now,
                    Timer.id.not_in(failed) if failed else Timer.id.is_not(None),
                    Timer.kind.in_(kinds) if kinds is not None else Timer.id.is_not(None),
                )
                .order_by(Timer.due_at, Timer.id)
                .limit(BATCH)
            ).all()
        if not ids:
            return fired
        for timer_id in ids:
            try:
                with db.session() as session:
                    if _fire(app, session, timer_id, now, worker_id):
                        fired += 1
            except Exception:  # one bad timer must not stop the others; it stays due
                log.exception("temporizador %s: error al ejecutarlo; se reintentará", timer_id)
                failed.add(timer_id)


def _claim(session: Session, timer_id: int, now: dt.datetime, worker_id: str) -> bool:
    """Mark the timer fired by this worker; False if another worker has it or had it.

    PostgreSQL: SKIP LOCKED first, so a timer being fired elsewhere is passed over instead of
    waited for; the conditional UPDATE (checked by rowcount) is what guarantees once-only.
    """
    pending = select(Timer.id).where(Timer.id == timer_id, Timer.fired_at.is_(None))
    if not claim_rows(session, pending):
        return False
    result = session.execute(
        update(Timer)
        .where(Timer.id == timer_id, Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))
        .values(fired_at=now, fired_by=worker_id)
        .execution_options(synchronize_session=False)
    )
    return isinstance(result, CursorResult) and result.rowcount == 1


def _fire(app: App, session: Session, timer_id: int, now: dt.datetime, worker_id: str) -> bool:
    if not _claim(session, timer_id, now, worker_id):
        return False
    timer = session.get(Timer, timer_id, populate_existing=True)
    assert timer is not None
    case = session.scalars(
        select(Case)
        .where(Case.id == timer.case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    reason = TIMER_REASONS.get(timer.kind, f"Temporizador {timer.kind}")
    record(
        session,
        AuditKind.TIMER,
        reason,
        at=now,
        case_id=case.id,
        event=timer.kind,
        data={"timer_id": timer.id, "due_at": timer.due_at.isoformat(), "worker": worker_id},
    )
    if timer.kind == deadlines.SUBSANACION:
        _expire_subsanacion(app, session, case, now)
    elif timer.kind == DELIVERY_ACCEPTED:
        _delivery_accepted(app, session, case, now)
    elif timer.kind in (deadlines.REMINDER, deadlines.ESCALATION):
        role = "staff" if timer.kind == deadlines.REMINDER else "manager"
        due = case.due_date.isoformat() if case.due_date else "sin fecha"
        record(
            session,
            AuditKind.NOTIFY,
            f"Aviso a: {role} (expediente {case.number}, vence el {due})",
            at=now,
            case_id=case.id,
            event=timer.kind,
            data={"role": role, "timer_id": timer.id},
        )
        if timer.kind == deadlines.ESCALATION and "vencido" not in (case.flags or []):
            case.flags = [*(case.flags or []), "vencido"]
    return True


def _expire_subsanacion(app: App, session: Session, case: Case, now: dt.datetime) -> None:
    if case.state == "observado":
        why = None
        if observation_undelivered(session, case):
            why = "la observación aún no fue entregada al servidor de correo del solicitante"
        elif followup.holds_subsanacion(session, case):
            why = "un mensaje de otra dirección que menciona este expediente espera al personal"
        if why is not None:
            followup.hold_subsanacion(app, session, case, now, why)
            return
    try:
        apply_event(
            session,
            app,
            case,
            engine_event(app, case, "subsanacion_expired"),
            actor=SYSTEM,
            now=now,
            reason="El solicitante no subsanó dentro del plazo",
            context_overrides={"subsanacion_expired": True},
        )
    except IllegalTransition as exc:
        record(
            session,
            AuditKind.TIMER_NOOP,
            f"Sin efecto: {exc}",
            at=now,
            case_id=case.id,
            event="vencer_subsanacion",
        )


def _delivery_accepted(app: App, session: Session, case: Case, now: dt.datetime) -> None:
    try:
        apply_event(
            session,
            app,
            case,
            engine_event(app, case, "delivery_accepted"),
            actor=SYSTEM,
            now=now,
            reason="El servidor de correo aceptó el envío",
        )
    except IllegalTransition as exc:
        record(
            session,
            AuditKind.TIMER_NOOP,
            f"Sin efecto: {exc}",
            at=now,
            case_id=case.id,
            event=DELIVERY_ACCEPTED,
        )


@dataclass
class Leadership:
    """The connection holding the sweep's advisory lock while this process leads."""

    app: App
    worker_id: str
    conn: Connection | None = field(default=None)
    leading: bool = False

    def is_leader(self) -> bool:
        """Lead if the lock is free; keep leading while the lock's connection lives."""
        if self.leading and self.conn is not None and not self.conn.closed:
            return True
        try:
            if self.conn is None:
                self.conn = self.app.database.engine.connect()
            self.leading = advisory_lock(self.conn, SWEEP_LOCK_KEY)
            self.conn.commit()  # a session-level advisory lock outlives the transaction
        except SQLAlchemyError:
            log.exception("no se pudo comprobar el liderazgo del barrido")
            self.release()
        return self.leading

    def release(self) -> None:
        """Give up leadership: unlock, and drop the connection (pooled ones would keep it)."""
        if self.conn is not None:
            try:
                if self.leading:
                    advisory_unlock(self.conn, SWEEP_LOCK_KEY)
                self.conn.invalidate()
            except SQLAlchemyError:
                log.exception("no se pudo liberar el bloqueo del barrido")
            self.conn.close()
        self.conn, self.leading = None, False


def sweep_job(leadership: Leadership) -> int:
    """The scheduled job: sweep only while this process holds the leader lock."""
    if not leadership.is_leader():
        return 0
    return run_sweep(leadership.app, dt.datetime.now(dt.UTC), leadership.worker_id)


def weekly_report_job(leadership: Leadership) -> int:
    """The scheduled weekly SLA report to managers (idempotent per ISO week and address)."""
    if not leadership.is_leader():
        return 0
    from mailflow.reports.export import weekly_report_job as queue_weekly_report

    return len(queue_weekly_report(leadership.app, dt.datetime.now(dt.UTC)))


def build_scheduler(app: App, worker_id: str | None = None) -> BackgroundScheduler:
    """A BackgroundScheduler (not started): the sweep every `sla.sweep_seconds` and the weekly
    report on Mondays at 08:00 local time; both act only in the elected leader."""
    worker = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    scheduler = BackgroundScheduler(timezone=app.settings.calendar.timezone)
    leadership = Leadership(app, worker)
    scheduler.add_job(
        sweep_job,
        "interval",
        seconds=app.settings.sla.sweep_seconds,
        args=[leadership],
        id="mailflow.sweep",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
    scheduler.add_job(
        weekly_report_job,
        "cron",
        day_of_week="mon",
        hour=8,
        args=[leadership],
        id="mailflow.weekly_report",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=6 * 3600,
        replace_existing=True,
    )
    return scheduler
