"""Clock effects: start, pause, resume and stop a case's deadline, open the subsanación window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailflow.cases.effect_run import EffectRun, audit
from mailflow.clock import deadlines, sla

if TYPE_CHECKING:
    from mailflow.cases.machine_terms import Effect

CLOCK_TIMERS = (deadlines.REMINDER, deadlines.ESCALATION)


def _start_clock(run: EffectRun, _: Effect) -> None:
    app, case = run.app, run.case
    term = (
        app.catalogue.get(case.tramite).term_days
        if case.tramite in app.catalogue.tramites
        else None
    )
    if term is None:
        return
    cal = app.calendario_de(case.office)
    clock = sla.start(cal, case.received_at, term)
    deadlines.store_clock(case, clock)
    deadlines.stamp(case, cal)
    deadlines.schedule_deadline_timers(
        run.session, case, cal, clock.due, app.settings.sla.reminder_days_before
    )
    audit(run, "sla", clock.note, {"op": "start", "clock": deadlines.clock_to_json(clock)})


def _pause_clock(run: EffectRun, _: Effect) -> None:
    clock = deadlines.clock_from_json(run.case.sla)
    if clock is None or clock.is_paused:
        return
    clock = sla.pause(clock, run.app.calendario_de(run.case.office), run.now)
    deadlines.store_clock(run.case, clock)
    deadlines.cancel(run.session, run.case, CLOCK_TIMERS, run.now)
    audit(run, "sla", clock.note, {"op": "pause", "clock": deadlines.clock_to_json(clock)})


def _resume_clock(run: EffectRun, _: Effect) -> None:
    app, case = run.app, run.case
    clock = deadlines.clock_from_json(case.sla)
    deadlines.cancel(run.session, case, (deadlines.SUBSANACION,), run.now)
    if clock is None or not clock.is_paused:
        return
    cal = app.calendario_de(case.office)
    clock = sla.resume(clock, cal, run.now)
    deadlines.store_clock(case, clock)
    deadlines.stamp(case, cal)
    deadlines.schedule_deadline_timers(
        run.session, case, cal, clock.due, app.settings.sla.reminder_days_before
    )
    audit(run, "sla", clock.note, {"op": "resume", "clock": deadlines.clock_to_json(clock)})


def _stop_clock(run: EffectRun, _: Effect) -> None:
    case = run.case
    deadlines.cancel(run.session, case, (*CLOCK_TIMERS, deadlines.SUBSANACION), run.now)
    clock = deadlines.clock_from_json(case.sla)
    if clock is None:
        return
    day = run.app.calendario_de(case.office).local(run.now).date()
    deadlines.store_clock(case, clock, stopped_on=day)
    note = f"Plazo concluido el {day.isoformat()} (vencía el {clock.due.isoformat()})."
    audit(run, "sla", note, {"op": "stop"})


def _open_subsanacion_window(run: EffectRun, _: Effect) -> None:
    app, case = run.app, run.case
    days = app.settings.sla.subsanacion_days
    cal = app.calendario_de(case.office)
    last_day = sla.subsanacion_deadline(cal, run.now, days)
    ends = deadlines.local_instant(cal, last_day + dt.timedelta(days=1))
    deadlines.schedule(run.session, case, deadlines.SUBSANACION, ends)
    case.sla = {**(case.sla or {}), "subsanacion_deadline": last_day.isoformat()}
    note = (
        f"Plazo de subsanación de {days} días hábiles: el solicitante puede responder "
        f"hasta el {last_day.isoformat()}."
    )
    audit(run, "sla", note, {"op": "subsanacion", "until": last_day.isoformat(), "days": days})


HANDLERS: dict[str, Callable[[EffectRun, Effect], None]] = {
    "start_clock": _start_clock,
    "pause_clock": _pause_clock,
    "resume_clock": _resume_clock,
    "stop_clock": _stop_clock,
    "open_subsanacion_window": _open_subsanacion_window,
}
"""This module's handlers by effect name."""
