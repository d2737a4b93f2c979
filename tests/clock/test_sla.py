"""Tests for the pure SLA clock: start, pause (observado), resume (subsanación), status."""

from __future__ import annotations

import datetime as dt

import pytest

from mailflow.clock import sla
from mailflow.clock.dias_habiles import Calendario

D = dt.date
T = dt.datetime
CAL = Calendario()
MON = T(2026, 11, 23, 10, 0)  # the brief's example: 15 días hábiles → 2026-12-16


def test_start_uses_the_legal_receipt_day() -> None:
    clock = sla.start(CAL, MON, 15)
    assert (clock.term_days, clock.started_on, clock.due) == (15, D(2026, 11, 23), D(2026, 12, 16))
    assert not clock.is_paused
    assert clock.note == (
        "Plazo de 15 días hábiles: se tiene por recibido el 2026-11-23, vence el 2026-12-16."
    )
    # Friday 17:00 counts that Friday (no cutoff): 23-27 Nov, 30 Nov-4 Dec, 7, 10, 11, 14, 15 Dec
    late = sla.start(CAL, T(2026, 11, 20, 17, 0), 15)
    assert (late.started_on, late.due) == (D(2026, 11, 20), D(2026, 12, 15))
    # a Saturday filing counts on Monday 23 and the term runs from Tuesday 24
    weekend = sla.start(CAL, T(2026, 11, 21, 10, 0), 15)
    assert (weekend.started_on, weekend.due) == (D(2026, 11, 23), D(2026, 12, 16))


def test_pause_records_remaining_days_and_explains() -> None:
    clock = sla.start(CAL, MON, 15)
    paused = sla.pause(clock, CAL, T(2026, 11, 25, 10, 0))
    assert paused.paused_on == D(2026, 11, 25)
    assert paused.remaining_when_paused == 13
    assert paused.note == "Plazo suspendido el 2026-11-25 con 13 días hábiles restantes."
    assert clock.paused_on is None  # the original clock is untouched
    assert sla.status(paused, CAL, D(2027, 6, 1), 3) == "paused"
    assert sla.business_days_left(paused, CAL, D(2027, 6, 1)) == 13


@pytest.mark.parametrize(
    ("received", "term", "paused_at", "remaining", "resumed_at", "due"),
    [
        # received Mon, 3 days used (Tue-Thu), resumed a week later: due moves by 5
        (MON, 15, T(2026, 11, 26, 10), 12, T(2026, 12, 3, 10), D(2026, 12, 23)),
        (MON, 15, T(2026, 11, 25, 10), 13, T(2026, 12, 2, 10), D(2026, 12, 23)),
        # observed at once (Friday evening, counts that Friday): nothing used yet
        (T(2026, 11, 20, 18), 15, T(2026, 11, 20, 18), 15, T(2026, 11, 30, 9), D(2026, 12, 23)),
        # subsanación on Friday 27 at 17:30 counts that Friday (no cutoff): 13 días hábiles
        # from Mon 30: 30 Nov, 1-4, 7, 10, 11, 14-18 December (8 and 9 are holidays)
        (MON, 15, T(2026, 11, 25, 10), 13, T(2026, 11, 27, 17, 30), D(2026, 12, 18)),
        # on Saturday it counts from Monday 30, so the 13 run from Tuesday 1 December
        (MON, 15, T(2026, 11, 25, 10), 13, T(2026, 11, 28, 11), D(2026, 12, 21)),
        # pause and resume around 8 and 9 December
        (T(2026, 12, 1, 10), 5, T(2026, 12, 3, 10), 3, T(2026, 12, 7, 10), D(2026, 12, 14)),
        # resumed the same day: due unchanged
        (MON, 15, T(2026, 11, 25, 10), 13, T(2026, 11, 25, 15), D(2026, 12, 16)),
        # already overdue when observed: stays overdue after the subsanación
        (MON, 5, T(2026, 12, 2, 10), -2, T(2026, 12, 3, 10), D(2026, 12, 1)),
        # pause across the year end
        (T(2026, 12, 21, 10), 5, T(2026, 12, 22, 10), 4, T(2027, 1, 4, 10), D(2027, 1, 8)),
    ],
)
def test_pause_resume_carries_remaining_days_over(
    received: T, term: int, paused_at: T, remaining: int, resumed_at: T, due: D
) -> None:
    clock = sla.start(CAL, received, term)
    paused = sla.pause(clock, CAL, paused_at)
    assert paused.remaining_when_paused == remaining
    resumed = sla.resume(paused, CAL, resumed_at)
    assert resumed.due == due
    assert not resumed.is_paused and resumed.remaining_when_paused is None
    (pausa,) = resumed.pauses
    assert paused.paused_on is not None
    assert pausa == sla.Pausa(paused.paused_on, CAL.legal_receipt_day(resumed_at), remaining)
    # the due date moves by exactly the business days the clock was suspended
    shift = resumed.paused_business_days(CAL)
    assert CAL.add_business_days(clock.due, shift) == due
    assert sla.business_days_left(resumed, CAL, pausa.resumed_on) == remaining


def test_resume_note_and_two_pauses() -> None:
    clock = sla.start(CAL, MON, 15)
    clock = sla.pause(clock, CAL, T(2026, 11, 26, 10))
    clock = sla.resume(clock, CAL, T(2026, 12, 3, 10))
    assert clock.note == (
        "Plazo reanudado el 2026-12-03 (subsanación recibida) con 12 días hábiles restantes: "
        "vence el 2026-12-23 (antes 2026-12-16)."
    )
    clock = sla.pause(clock, CAL, T(2026, 12, 7, 10))
    assert clock.remaining_when_paused == 10
    clock = sla.resume(clock, CAL, T(2026, 12, 10, 10))
    assert clock.due == D(2026, 12, 24)
    assert len(clock.pauses) == 2
    assert clock.paused_business_days(CAL) == 6  # 5 + 1 (8 and 9 December are holidays)
    assert CAL.add_business_days(D(2026, 12, 16), 6) == clock.due


def test_overdue_pause_note() -> None:
    clock = sla.pause(sla.start(CAL, MON, 5), CAL, T(2026, 12, 2, 10))
    assert clock.note == "Plazo suspendido el 2026-12-02 con el plazo vencido hace 2 días hábiles."
    one = sla.pause(sla.start(CAL, MON, 15), CAL, T(2026, 12, 15, 10))
    assert one.note == "Plazo suspendido el 2026-12-15 con 1 día hábil restante."


def test_note_does_not_take_part_in_equality() -> None:
    a = sla.start(CAL, MON, 15)
    b = sla.start(CAL, T(2026, 11, 22, 10), 15)  # Sunday: same legal day, same clock
    assert a == b


@pytest.mark.parametrize(
    ("today", "due_soon_days", "left", "expected"),
    [
        (D(2026, 11, 23), 3, 15, "on_time"),
        (D(2026, 12, 9), 3, 5, "on_time"),  # a holiday
        (D(2026, 12, 10), 3, 4, "on_time"),
        (D(2026, 12, 11), 3, 3, "due_soon"),
        (D(2026, 12, 12), 3, 3, "due_soon"),  # Saturday
        (D(2026, 12, 15), 3, 1, "due_soon"),
        (D(2026, 12, 16), 3, 0, "due_soon"),  # the due day itself
        (D(2026, 12, 17), 3, -1, "overdue"),
        (D(2026, 12, 19), 3, -2, "overdue"),  # Saturday after: still overdue
        (D(2026, 12, 15), 0, 1, "on_time"),
        (D(2026, 12, 16), 0, 0, "due_soon"),
        (D(2026, 11, 23), 15, 15, "due_soon"),
    ],
)
def test_status_transitions(today: D, due_soon_days: int, left: int, expected: str) -> None:
    clock = sla.start(CAL, MON, 15)
    assert sla.business_days_left(clock, CAL, today) == left
    assert sla.status(clock, CAL, today, due_soon_days) == expected


@pytest.mark.parametrize(
    ("observed_at", "days", "deadline"),
    [
        (T(2026, 11, 23, 10), 2, D(2026, 11, 25)),
        (T(2026, 11, 20, 18), 2, D(2026, 11, 24)),  # Friday 18:00 counts that Friday
        (T(2026, 11, 21, 10), 2, D(2026, 11, 25)),  # Saturday
        (T(2026, 12, 7, 10), 2, D(2026, 12, 11)),  # 8 and 9 December
        (T(2026, 12, 31, 10), 2, D(2027, 1, 5)),  # 1 January
        (T(2026, 4, 1, 10), 1, D(2026, 4, 6)),  # Holy Week
    ],
)
def test_subsanacion_deadline(observed_at: T, days: int, deadline: D) -> None:
    assert sla.subsanacion_deadline(CAL, observed_at, days) == deadline


def test_invalid_operations_raise_clear_errors() -> None:
    clock = sla.start(CAL, MON, 15)
    with pytest.raises(sla.SlaError, match="no está suspendido"):
        sla.resume(clock, CAL, T(2026, 11, 25, 10))
    with pytest.raises(sla.SlaError, match="anterior a su inicio"):
        sla.pause(clock, CAL, T(2026, 11, 20, 10))
    paused = sla.pause(clock, CAL, T(2026, 11, 25, 10))
    with pytest.raises(sla.SlaError, match="ya está suspendido desde el 2026-11-25"):
        sla.pause(paused, CAL, T(2026, 11, 26, 10))
    with pytest.raises(sla.SlaError, match="anterior a la suspensión"):
        sla.resume(paused, CAL, T(2026, 11, 24, 10))
    with pytest.raises(sla.SlaError, match="plazo inválido"):
        sla.start(CAL, MON, -1)
