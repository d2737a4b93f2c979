"""Timers scheduled and cancelled in one transaction: unflushed ones count, nothing doubles."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from mailflow.clock import deadlines
from mailflow.store.db import Database
from mailflow.store.models import Timer
from tests.store.test_db import NOW, make_case


def _timers(session: Session) -> list[tuple[str, dt.datetime, bool]]:
    rows = session.scalars(select(Timer).order_by(Timer.id)).all()
    return [(t.kind, t.due_at.replace(tzinfo=dt.UTC), t.cancelled_at is not None) for t in rows]


def test_cancel_sees_timers_not_yet_flushed(sqlite_db: Database) -> None:
    due = NOW + dt.timedelta(days=3)
    with sqlite_db.session() as s:
        case = make_case(s)
        deadlines.schedule(s, case, deadlines.REMINDER, due)
        deadlines.schedule(s, case, deadlines.ESCALATION, due)
        assert deadlines.cancel(s, case, (deadlines.REMINDER,), NOW) == 1
        assert deadlines.cancel(s, case, (deadlines.REMINDER,), NOW) == 0
    with sqlite_db.session() as s:
        assert _timers(s) == [
            (deadlines.REMINDER, due, True),
            (deadlines.ESCALATION, due, False),
        ]


def test_schedule_revives_the_same_timer_flushed_or_not(sqlite_db: Database) -> None:
    due = NOW + dt.timedelta(days=3)
    with sqlite_db.session() as s:
        case = make_case(s)
        first = deadlines.schedule(s, case, deadlines.REMINDER, due)
        deadlines.cancel(s, case, (deadlines.REMINDER,), NOW)
        assert deadlines.schedule(s, case, deadlines.REMINDER, due) is first
        s.flush()
        deadlines.cancel(s, case, (deadlines.REMINDER,), NOW)
        assert deadlines.schedule(s, case, deadlines.REMINDER, due) is first
        assert deadlines.cancel(s, case, (deadlines.REMINDER,), NOW) == 1
    with sqlite_db.session() as s:
        assert _timers(s) == [(deadlines.REMINDER, due, True)]


def test_scheduling_does_not_flush_the_case(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        case = make_case(s)
        s.flush()
        updates: list[str] = []
        event.listen(
            s.get_bind(),
            "before_cursor_execute",
            lambda _c, _cur, stmt, *_: updates.append(stmt) if "UPDATE" in stmt else None,
        )
        case.state = "observado"
        deadlines.schedule(s, case, deadlines.REMINDER, NOW)
        deadlines.schedule(s, case, deadlines.ESCALATION, NOW)
        deadlines.cancel(s, case, (deadlines.REMINDER,), NOW)
        assert updates == []
        s.flush()
        assert len(updates) == 1
