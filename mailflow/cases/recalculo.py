"""Apply a changed legal calendar to the cases it affects: due dates, extemporáneo, windows."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from mailflow.cases.core import recheck_extemporaneo
from mailflow.clock import deadlines, sla
from mailflow.clock.deadlines import snapshot
from mailflow.clock.dias_habiles import Calendario
from mailflow.clock.sla import Pausa, SlaClock
from mailflow.store.audit import SYSTEM, record
from mailflow.store.models import Case, CaseEvent, Timer
from mailflow.vocabulary import AuditKind

if TYPE_CHECKING:
    from mailflow.app import App

log = logging.getLogger(__name__)
CLOCK_TIMERS = (deadlines.REMINDER, deadlines.ESCALATION)
NO_PRESENTADO = "no_presentado"
FLAG_WINDOW_EXTENDED = "subsanacion_ampliada"
BATCH = 100  # cases per transaction
CLOSED_LOOKBACK_DAYS = 366  # closed no presentado cases older than this are not revisited


@dataclass(frozen=True)
class Movimiento:
    """One thing a calendar change moved on one case (a line of `calendar apply`)."""

    case_number: str
    office: str
    what: str  # "recepción", "vencimiento", "extemporáneo", "subsanación", "no presentado"
    before: str
    after: str
    sources: tuple[str, ...]

    def line(self) -> str:
        """Spanish: "2026-000012 (lima): vencimiento 2026-12-16 → 2026-12-17 (fuente)"."""
        why = "; ".join(self.sources) or "cambio del calendario legal"
        return (
            f"{self.case_number} ({self.office}): {self.what} {self.before} → {self.after} — {why}"
        )


def _sources(old: dict[str, Any] | None, new: dict[str, Any], cal: Calendario) -> list[str]:
    """What changed between two snapshots, in Spanish with sources (the audit's reason)."""
    if not old:
        changed = [f"{day}: {why}" for day, why in new["dias"].items()]
        return ["calendario legal vigente (expediente sin registro del calendario anterior)"] + [
            c for c in changed if not c.split(": ", 1)[1].startswith("feriado:")
        ]
    out: list[str] = []
    if old.get("regla") != new["regla"]:
        out.append(f"cambio de la regla de recepción: {cal.rule_summary()}")
    before, after = old.get("dias", {}), new["dias"]
    horizon = min(old.get("hasta") or new["hasta"], new["hasta"])  # both snapshots cover it
    for day in sorted(d for d in set(before) | set(after) if d <= horizon):
        if before.get(day) == after.get(day):
            continue
        if day in after:
            out.append(f"{day} no se computa: {after[day]}")
        else:
            out.append(f"{day} vuelve a computarse (antes: {before[day]})")
    return out


def replay(clock: SlaClock, cal: Calendario, received: dt.datetime) -> SlaClock:
    """The clock recomputed with `cal`: same term, receipt and pause days, its due date and
    remaining days recounted (a suspension period inside the term pushes the due date)."""
    due = cal.due_date(received, clock.term_days)
    pauses: list[Pausa] = []
    for p in clock.pauses:
        remaining = cal.business_days_between(p.paused_on, due)
        due = cal.add_business_days(p.resumed_on, remaining)
        pauses.append(Pausa(p.paused_on, p.resumed_on, remaining))
    left = None
    if clock.paused_on is not None:
        left = cal.business_days_between(clock.paused_on, due)
    return replace(
        clock,
        started_on=cal.legal_receipt_day(received),
        due=due,
        pauses=tuple(pauses),
        remaining_when_paused=left,
    )


def _observed(session: Session, case: Case) -> CaseEvent | None:
    """The case's latest "subsanación window opened" audit event."""
    events = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == "sla")
        .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
    ).all()
    return next((e for e in events if (e.data or {}).get("op") == "subsanacion"), None)


def _window(app: App, session: Session, case: Case, cal: Calendario) -> tuple[str, str] | None:
    """(old, new) last day of the case's subsanación window when `cal` moves it, else None."""
    until = (case.sla or {}).get("subsanacion_deadline")
    event = _observed(session, case) if until else None
    if not until or event is None:
        return None
    days = int((event.data or {}).get("days") or app.settings.sla.subsanacion_days)
    observed_at = event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)
    new = sla.subsanacion_deadline(cal, observed_at, days).isoformat()
    return None if new == until else (until, new)


def _has_pending(session: Session, case: Case, kind: str) -> bool:
    return (
        session.scalar(
            select(Timer.id).where(
                Timer.case_id == case.id,
                Timer.kind == kind,
                Timer.fired_at.is_(None),
                Timer.cancelled_at.is_(None),
            )
        )
        is not None
    )


def recompute_case(app: App, session: Session, case: Case, now: dt.datetime) -> list[Movimiento]:
    """Recompute one open case with its office's calendar, in the caller's transaction: legal
    receipt day, due date (timers rescheduled), extemporáneo flag, open subsanación window.
    Every change is audited on the case with its source; returns what moved."""
    cal = app.calendario_de(case.office)
    office = case.office or app.calendarios.default_office
    stored = (case.sla or {}).get("calendario")
    first = cal.local(case.received_at).date()
    clock = deadlines.clock_from_json(case.sla or {})
    moved: list[Movimiento] = []

    def note(what: str, before: str, after: str, sources: list[str]) -> None:
        moved.append(Movimiento(case.number, office, what, before, after, tuple(sources)))

    receipt = cal.legal_receipt_day(case.received_at)
    new_clock = clock
    running = clock is not None and not (case.sla or {}).get("stopped_on")
    if clock is not None and running:
        new_clock = replay(clock, cal, case.received_at)
    last = max(d for d in (case.due_date, new_clock.due if new_clock else None, receipt) if d)
    fresh = snapshot(cal, min(first, receipt, _notified(case) or first), last)
    sources = _sources(stored, fresh, cal)
    if receipt != case.legal_receipt_day:
        note("recepción", case.legal_receipt_day.isoformat(), receipt.isoformat(), sources)
        case.legal_receipt_day = receipt
    if clock is not None and new_clock is not None and new_clock != clock:
        deadlines.store_clock(case, new_clock)
        note("vencimiento", clock.due.isoformat(), new_clock.due.isoformat(), sources)
        if not new_clock.is_paused:
            deadlines.cancel(session, case, CLOCK_TIMERS, now)
            deadlines.schedule_deadline_timers(
                session, case, cal, new_clock.due, app.settings.sla.reminder_days_before
            )
        if "vencido" in (case.flags or []) and new_clock.due >= cal.local(now).date():
            case.flags = [f for f in case.flags if f != "vencido"]  # no longer overdue
    was_late = "extemporaneo" in (case.flags or [])
    late = recheck_extemporaneo(app, case, cal)
    if late is not None and late != was_late:
        note("extemporáneo", _si_no(was_late), _si_no(late), sources)
    window = _window(app, session, case, cal)
    if window is not None and _has_pending(session, case, deadlines.SUBSANACION):
        old, new = window
        deadlines.cancel(session, case, (deadlines.SUBSANACION,), now)
        ends = deadlines.local_instant(cal, dt.date.fromisoformat(new) + dt.timedelta(days=1))
        deadlines.schedule(session, case, deadlines.SUBSANACION, ends)
        case.sla = {**(case.sla or {}), "subsanacion_deadline": new}
        note("subsanación", old, new, sources)
    if moved or stored != fresh:  # an unchanged case is not written (no version bump)
        case.sla = {**(case.sla or {}), "calendario": fresh}
    for m in moved:
        _audit(session, case, m, now)
    return moved


def flag_closed_no_presentado(
    app: App, session: Session, case: Case, now: dt.datetime
) -> list[Movimiento]:
    """A case closed as no presentado whose subsanación window the calendar now extends past
    its closing is flagged `subsanacion_ampliada` for staff (once), and audited."""
    if case.state != NO_PRESENTADO or FLAG_WINDOW_EXTENDED in (case.flags or []):
        return []
    cal = app.calendario_de(case.office)
    window = _window(app, session, case, cal)
    if window is None or window[1] <= window[0]:
        return []
    old, new = window
    stored = (case.sla or {}).get("calendario")
    observed = _observed(session, case)
    first = observed.at.date() if observed is not None else cal.local(case.received_at).date()
    sources = _sources(stored, snapshot(cal, first, dt.date.fromisoformat(new)), cal)
    case.flags = [*(case.flags or []), FLAG_WINDOW_EXTENDED]
    m = Movimiento(
        case.number, case.office or app.calendarios.default_office, "no presentado", old, new,
        tuple(s for s in sources if not s.startswith("calendario legal vigente")),
    )  # fmt: skip
    record(
        session,
        AuditKind.FLAG,
        f"Revisar: el plazo de subsanación se amplía del {old} al {new} por un cambio del "
        f"calendario legal, pero el expediente se cerró como no presentado "
        f"({'; '.join(m.sources) or 'calendario legal'}).",
        at=now,
        actor=SYSTEM,
        case_id=case.id,
        event="recalculo_calendario",
        data={"op": "recalculo", "flag": FLAG_WINDOW_EXTENDED, "before": old, "after": new,
              "sources": list(m.sources)},
    )  # fmt: skip
    record(
        session,
        AuditKind.NOTIFY,
        f"Aviso a: staff (expediente {case.number}, cerrado como no presentado: revisar la "
        f"ampliación del plazo de subsanación al {new})",
        at=now,
        actor=SYSTEM,
        case_id=case.id,
        event="recalculo_calendario",
        data={"role": "staff", "flag": FLAG_WINDOW_EXTENDED},
    )
    return [m]


def apply_calendar(app: App, now: dt.datetime) -> list[Movimiento]:
    """Recompute every open case (BATCH cases per transaction) and flag closed no presentado cases
    whose window a late decree extends; returns everything that moved (empty when the
    calendar did not change since the last run, so it is safe at every start-up)."""
    db = app.database
    with db.session(readonly=True) as session:
        open_ids = session.scalars(
            select(Case.id).where(Case.closed_at.is_(None)).order_by(Case.id)
        ).all()
        since = now - dt.timedelta(days=CLOSED_LOOKBACK_DAYS)
        closed_ids = session.scalars(
            select(Case.id).where(Case.state == NO_PRESENTADO, Case.closed_at >= since)
        ).all()
    moved: list[Movimiento] = []
    for ids, fn in ((open_ids, recompute_case), (closed_ids, flag_closed_no_presentado)):
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            try:
                with db.session() as session:
                    changes: list[Movimiento] = []
                    for case in session.scalars(
                        select(Case).where(Case.id.in_(batch)).order_by(Case.id)
                    ):
                        changes.extend(fn(app, session, case, now))
            except (SQLAlchemyError, StaleDataError):  # changed meanwhile: next run retries
                log.exception("calendario: no se pudo recalcular los expedientes %s", batch)
                continue
            moved.extend(changes)
    return moved


def _audit(session: Session, case: Case, m: Movimiento, now: dt.datetime) -> None:
    sources = "; ".join(m.sources) or "cambio del calendario legal"
    record(
        session,
        AuditKind.SLA,
        f"Recálculo por cambio del calendario legal: {m.what} {m.before} → {m.after} "
        f"({sources}).",
        at=now,
        actor=SYSTEM,
        case_id=case.id,
        event="recalculo_calendario",
        data={"op": "recalculo", "what": m.what, "before": m.before, "after": m.after,
              "sources": list(m.sources)},
    )  # fmt: skip


def _notified(case: Case) -> dt.date | None:
    """The case's fecha_notificacion (start of a recurso's filing window), if valid."""
    raw = (case.fields or {}).get("fecha_notificacion")
    if isinstance(raw, dict):
        raw = raw.get("value")
    try:
        return dt.date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _si_no(flag: bool) -> str:
    return "sí" if flag else "no"
