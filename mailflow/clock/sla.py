"""Pure SLA clock: a term in días hábiles that is suspended while a case is observado."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Literal

from mailflow.clock.dias_habiles import Calendario
from mailflow.errors import MailflowError

Status = Literal["on_time", "due_soon", "overdue", "paused"]


class SlaError(MailflowError):
    """A clock operation that makes no sense in the clock's current state."""


@dataclass(frozen=True)
class Pausa:
    """One finished suspension: from the observation to the subsanación (legal days)."""

    paused_on: dt.date
    resumed_on: dt.date
    remaining: int


@dataclass(frozen=True)
class SlaClock:
    """The deadline of one case. `note` explains the last change, for the audit trail."""

    term_days: int
    started_on: dt.date  # legal receipt day of the request
    due: dt.date  # while paused: the due date before the suspension
    paused_on: dt.date | None = None
    remaining_when_paused: int | None = None
    pauses: tuple[Pausa, ...] = ()
    note: str = field(default="", compare=False)

    @property
    def is_paused(self) -> bool:
        """True while the clock is suspended (an observation awaiting subsanación)."""
        return self.paused_on is not None

    def paused_business_days(self, cal: Calendario) -> int:
        """Business days by which finished suspensions pushed the due date back."""
        return sum(cal.business_days_between(p.paused_on, p.resumed_on) for p in self.pauses)


def start(cal: Calendario, received: dt.datetime, term_days: int) -> SlaClock:
    """Open the clock of a request received at `received` with a term of `term_days`
    días hábiles (`Calendario.due_date`: TUO Ley 27444 arts. 144-145, no cutoff by default).

    Raises SlaError when `term_days` < 0."""
    if term_days < 0:
        raise SlaError(f"plazo inválido: {term_days} días hábiles (debe ser 0 o más)")
    started_on = cal.legal_receipt_day(received)
    due = cal.due_date(received, term_days)
    note = (
        f"Plazo de {_dias(term_days)}: se tiene por recibido el {started_on.isoformat()}, "
        f"vence el {due.isoformat()}."
    )
    return SlaClock(term_days=term_days, started_on=started_on, due=due, note=note)


def pause(clock: SlaClock, cal: Calendario, on: dt.datetime) -> SlaClock:
    """Suspend the clock (case observado) and record the business days still remaining.

    The day of the observation is its legal day (next business day if it is sent on a
    non-business day or, with a configured cutoff, after it); the days up to and including
    it are used.
    """
    if clock.paused_on is not None:
        raise SlaError(f"el plazo ya está suspendido desde el {clock.paused_on.isoformat()}")
    day = cal.legal_receipt_day(on)
    anchor = clock.pauses[-1].resumed_on if clock.pauses else clock.started_on
    if day < anchor:
        raise SlaError(
            f"no se puede suspender el plazo el {day.isoformat()}: "
            f"es anterior a su inicio o reanudación ({anchor.isoformat()})"
        )
    remaining = cal.business_days_between(day, clock.due)
    note = f"Plazo suspendido el {day.isoformat()} con {_saldo(remaining)}."
    return replace(clock, paused_on=day, remaining_when_paused=remaining, note=note)


def resume(clock: SlaClock, cal: Calendario, on: dt.datetime) -> SlaClock:
    """Resume the clock when the subsanación arrives at `on`.

    The remaining business days carry over and are counted from the day after the legal
    receipt day of the subsanación: the term is not restarted.
    """
    if clock.paused_on is None or clock.remaining_when_paused is None:
        raise SlaError("el plazo no está suspendido: no hay nada que reanudar")
    day = cal.legal_receipt_day(on)
    if day < clock.paused_on:
        raise SlaError(
            f"no se puede reanudar el plazo el {day.isoformat()}: "
            f"es anterior a la suspensión ({clock.paused_on.isoformat()})"
        )
    remaining = clock.remaining_when_paused
    due = cal.add_business_days(day, remaining)
    note = (
        f"Plazo reanudado el {day.isoformat()} (subsanación recibida) con {_saldo(remaining)}: "
        f"vence el {due.isoformat()} (antes {clock.due.isoformat()})."
    )
    done = Pausa(paused_on=clock.paused_on, resumed_on=day, remaining=remaining)
    return replace(
        clock,
        due=due,
        paused_on=None,
        remaining_when_paused=None,
        pauses=(*clock.pauses, done),
        note=note,
    )


def business_days_left(clock: SlaClock, cal: Calendario, today: dt.date) -> int:
    """Business days in (today, due]: 0 on the due day, negative once overdue.

    While paused, the days that were remaining when the clock was suspended.
    """
    if clock.remaining_when_paused is not None:
        return clock.remaining_when_paused
    return cal.business_days_between(today, clock.due)


def status(clock: SlaClock, cal: Calendario, today: dt.date, due_soon_days: int) -> Status:
    """paused; overdue after the due date; due_soon with at most `due_soon_days` left."""
    if clock.is_paused:
        return "paused"
    if today > clock.due:
        return "overdue"
    if business_days_left(clock, cal, today) <= due_soon_days:
        return "due_soon"
    return "on_time"


def subsanacion_deadline(cal: Calendario, observed_at: dt.datetime, days: int) -> dt.date:
    """Last day to answer an observation sent at `observed_at` (window of `days`)."""
    return cal.due_date(observed_at, days)


def _dias(n: int) -> str:
    return "1 día hábil" if n == 1 else f"{n} días hábiles"


def _saldo(remaining: int) -> str:
    if remaining < 0:
        return f"el plazo vencido hace {_dias(-remaining)}"
    if remaining == 1:
        return "1 día hábil restante"
    return f"{remaining} días hábiles restantes"
