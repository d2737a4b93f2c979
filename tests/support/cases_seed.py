"""Seed helpers for the metrics, reports and dashboard tests: Case rows with known dates."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailflow.clock.dias_habiles import Calendario
from mailflow.config import CalendarSettings
from mailflow.store.models import Case

LIMA = ZoneInfo("America/Lima")
TODAY = dt.date(2026, 3, 16)  # a Monday; no Peruvian holiday in February or March 2026
CAL = Calendario.from_settings(CalendarSettings())


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    """A moment of `day` in Lima office time."""
    return dt.datetime.combine(day, dt.time(hour), tzinfo=LIMA)


def add_case(
    session: Session,
    seq: int,
    tramite: str,
    received: dt.date,
    *,
    term: int | None = 15,
    closed: dt.date | None = None,
    state: str | None = None,
    name: str = "Ana Pérez",
) -> Case:
    """Insert one case received at 10:00 on `received`, closed at 12:00 on `closed` if given."""
    due = CAL.due_date(at(received), term) if term is not None else None
    case = Case(
        number=f"EXP-2026-{seq:06d}",
        year=2026,
        seq=seq,
        tramite=tramite,
        machine="general",
        state=state or ("resuelto" if closed else "en_tramite"),
        applicant_name=name,
        applicant_email=f"persona{seq}@example.org",
        mailbox="mesadepartes",
        received_at=at(received),
        legal_receipt_day=CAL.legal_receipt_day(at(received)),
        due_date=due,
        closed_at=at(closed, 12) if closed else None,
    )
    session.add(case)
    return case


def seed_standard(session: Session) -> None:
    """The reference data set used by the metrics, report and dashboard tests.

    actualizacion_datos, received Mon 2026-02-02 (due 2026-02-23, 15 días hábiles):
      10 closed on 2026-02-20 (on time, 14 días hábiles), 3 closed on 2026-02-25 (late, 17).
    prorroga_residencia, received Mon 2026-02-16 (due 2026-03-09): 2 still open → overdue
      (5 días hábiles late on TODAY), 1 observado (paused: neither overdue nor late).
    autorizacion_viaje (5 días hábiles), received Tue 2026-03-10 (due 2026-03-17): 2 open →
      due soon with 1 día hábil left; received Mon 2026-03-16 (due 2026-03-23): 1 open, 5 left.
    """
    seq = 1
    for _ in range(10):
        add_case(
            session, seq, "actualizacion_datos", dt.date(2026, 2, 2), closed=dt.date(2026, 2, 20)
        )
        seq += 1
    for _ in range(3):
        add_case(
            session, seq, "actualizacion_datos", dt.date(2026, 2, 2), closed=dt.date(2026, 2, 25)
        )
        seq += 1
    for _ in range(2):
        add_case(session, seq, "prorroga_residencia", dt.date(2026, 2, 16), name="Luis Gómez")
        seq += 1
    add_case(session, seq, "prorroga_residencia", dt.date(2026, 2, 16), state="observado")
    seq += 1
    for _ in range(2):
        add_case(session, seq, "autorizacion_viaje", dt.date(2026, 3, 10), term=5)
        seq += 1
    add_case(session, seq, "autorizacion_viaje", TODAY, term=5, state="recibido")
