"""Deadline figures the desk shows: business days left, subsanación deadline, answered in time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mailflow.clock.dias_habiles import Calendario
from mailflow.store.models import Case


@dataclass(frozen=True)
class Plazo:
    """What the case page and list say about a case's term.

    `left`: business days still available (0 = due today, negative = overdue), None when the
    clock does not run; `subsanacion`: last day to correct an observación; `in_time`: for a
    closed case, whether it was closed on or before its due date (None: no due date).
    """

    mode: str
    due: dt.date | None
    left: int | None
    subsanacion: dt.date | None
    closed: dt.date | None
    in_time: bool | None


def days_left(cal: Calendario, today: dt.date, receipt_day: dt.date, due: dt.date) -> int:
    """Business days after today (or after the legal receipt day, if later) up to `due`.

    A term of n days counts from the day after the legal receipt day (Ley 27444: terms run from the next business day), so
    on the day a 5-day case is received — or before its receipt day, when it arrived on a
    holiday or after hours — exactly 5 days are left, never 6.
    """
    return cal.business_days_between(max(today, receipt_day), due)


def plazo(cal: Calendario, case: Case, today: dt.date, mode: str | None) -> Plazo:
    """The Plazo of `case` on `today` (local date); `mode` is the state's sla (running/paused/…)."""
    sla: dict[str, Any] = case.sla or {}
    until = sla.get("subsanacion_deadline")
    subsanacion = _date(until) if mode == "paused" else None
    closed = cal.local(case.closed_at).date() if case.closed_at else None
    left = None
    if case.due_date is not None and mode == "running" and closed is None:
        left = days_left(cal, today, case.legal_receipt_day, case.due_date)
    in_time = None
    if closed is not None and case.due_date is not None:
        in_time = closed <= case.due_date
    return Plazo(mode or "stopped", case.due_date, left, subsanacion, closed, in_time)


def left_text(left: int | None) -> str:
    """'Quedan 3 días hábiles', 'Vence hoy', 'Vencido hace 2 días hábiles' ('' for None)."""
    if left is None:
        return ""
    if left == 0:
        return "Vence hoy"
    n = abs(left)
    days = "día hábil" if n == 1 else "días hábiles"
    if left < 0:
        return f"Vencido hace {n} {days}"
    return "Queda 1 día hábil" if n == 1 else f"Quedan {n} {days}"


def _date(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
