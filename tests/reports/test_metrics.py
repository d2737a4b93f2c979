"""Metrics over seeded cases with known dates: every expected number is computed by hand."""

from __future__ import annotations

import datetime as dt

from mailflow.reports import metrics
from mailflow.store.db import Database
from tests.support.cases_seed import CAL, TODAY, add_case, seed_standard


def _summary(db: Database) -> metrics.Summary:
    with db.session() as session:
        seed_standard(session)
    with db.session(readonly=True) as session:
        return metrics.compute(session, CAL, TODAY, due_soon_days=3)


def test_compliance_per_procedure_and_month(sqlite_db: Database) -> None:
    s = _summary(sqlite_db)
    by_key = {(c.tramite, c.month): c for c in s.compliance}
    upd = by_key[("actualizacion_datos", "2026-02")]
    assert (upd.on_time, upd.late, upd.rate) == (10, 3, 76.9)
    # two open cases past their due date count as late; the observado one is paused, not counted
    pro = by_key[("prorroga_residencia", "2026-02")]
    assert (pro.on_time, pro.late, pro.rate) == (0, 2, 0.0)
    # not yet due: not decided
    assert ("autorizacion_viaje", "2026-03") not in by_key
    month = {c.month: c for c in s.compliance_by_month()}
    assert (month["2026-02"].on_time, month["2026-02"].late) == (10, 5)
    assert s.overall_rate() == 66.7


def test_backlog_by_state_and_age(sqlite_db: Database) -> None:
    s = _summary(sqlite_db)
    assert s.backlog == {
        "en_tramite": [2, 0, 0, 2],
        "observado": [0, 0, 0, 1],
        "recibido": [1, 0, 0, 0],
    }


def test_due_soon_and_overdue_lists(sqlite_db: Database) -> None:
    s = _summary(sqlite_db)
    assert [(p.tramite, p.due_date, p.days) for p in s.due_soon] == [
        ("autorizacion_viaje", dt.date(2026, 3, 17), 1),
        ("autorizacion_viaje", dt.date(2026, 3, 17), 1),
    ]
    assert [(p.number, p.days) for p in s.overdue] == [
        ("EXP-2026-000014", 5),
        ("EXP-2026-000015", 5),
    ]
    assert all(p.applicant == "Luis Gómez" for p in s.overdue)


def test_volume_last_30_days(sqlite_db: Database) -> None:
    s = _summary(sqlite_db)
    assert len(s.volume) == 30
    assert s.volume[0] == (dt.date(2026, 2, 15), 0)
    assert s.volume[-1] == (TODAY, 1)
    nonzero = {d: n for d, n in s.volume if n}
    assert nonzero == {dt.date(2026, 2, 16): 3, dt.date(2026, 3, 10): 2, TODAY: 1}


def test_median_resolution_in_dias_habiles(sqlite_db: Database) -> None:
    s = _summary(sqlite_db)
    assert s.median_days == {"actualizacion_datos": 14.0}
    assert s.totals == {"recibidos": 19, "cerrados": 13, "abiertos": 6}


def test_period_and_closing_on_due_day() -> None:
    assert metrics.period_start(dt.date(2026, 3, 16)) == dt.date(2025, 10, 1)
    assert metrics.period_start(dt.date(2026, 1, 5), months=1) == dt.date(2026, 1, 1)
    assert [metrics.age_bucket(a) for a in (0, 5, 6, 10, 11, 15, 16)] == [0, 0, 1, 1, 2, 2, 3]


def test_closed_on_the_due_day_is_on_time_and_late_after_cutoff(sqlite_db: Database) -> None:
    received = dt.date(2026, 2, 2)  # due 2026-02-23
    with sqlite_db.session() as session:
        add_case(session, 1, "renuncia", received, closed=dt.date(2026, 2, 23))
        add_case(session, 2, "renuncia", received, closed=dt.date(2026, 2, 24))
        add_case(session, 3, "carne_solicitante", received, term=None, closed=received)
    with sqlite_db.session(readonly=True) as session:
        s = metrics.compute(session, CAL, TODAY, due_soon_days=3)
    assert [(c.tramite, c.on_time, c.late) for c in s.compliance] == [("renuncia", 1, 1)]
    assert s.median_days == {"carne_solicitante": 0.0, "renuncia": 15.5}
