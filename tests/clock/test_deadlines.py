"""Timers scheduled and cancelled in one transaction: unflushed ones count, nothing doubles."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, event, select
from sqlalchemy.orm import Session

from mailflow.clock import deadlines
from mailflow.store.bulkrows import pending
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


def test_timers_of_a_new_case_queued_then_found_in_the_same_transaction(
    sqlite_db: Database,
) -> None:
    """The timers of a case opened in the transaction, queued at the end of its message
    (`queue_held_timers`), are inserted before anything reads timers, and before a held timer
    inserted on its own (ids in the order scheduled); the case is then looked up in the
    database: a cancel in a later message finds them."""
    due = NOW + dt.timedelta(days=3)
    timers = cast(Table, Timer.__table__)
    with sqlite_db.session() as s:
        first, second = make_case(s), make_case(s, 2)
        for case in (first, second):
            deadlines.fresh_case_timers(s, case.id)
        deadlines.schedule(s, first, deadlines.REMINDER, due)
        deadlines.schedule(s, first, deadlines.ESCALATION, due)
        deadlines.queue_held_timers(s)
        assert [t["kind"] for t in pending(s, timers)] == ["reminder", "escalation"]
        deadlines.schedule(s, second, deadlines.REMINDER, due)
        deadlines.insert_held_timers(s)  # the queued ones first
        assert pending(s, timers) == []
        assert deadlines.cancel(s, first, (deadlines.REMINDER,), NOW) == 1  # from the database
        assert not deadlines.subsanacion_expired(s, first, NOW)
    with sqlite_db.session() as s:
        rows = s.scalars(select(Timer).order_by(Timer.id)).all()
        assert [(t.id, t.case_id, t.kind, t.cancelled_at is not None) for t in rows] == [
            (1, first.id, deadlines.REMINDER, True),
            (2, first.id, deadlines.ESCALATION, False),
            (3, second.id, deadlines.REMINDER, False),
        ]


def test_queued_timers_go_with_the_savepoint_they_were_scheduled_in(sqlite_db: Database) -> None:
    due = NOW + dt.timedelta(days=3)
    with sqlite_db.session() as s:
        kept, dropped = make_case(s), make_case(s, 2)
        for case in (kept, dropped):
            deadlines.fresh_case_timers(s, case.id)
        with s.begin_nested():
            deadlines.schedule(s, kept, deadlines.REMINDER, due)
            deadlines.queue_held_timers(s)
        try:
            with s.begin_nested():
                deadlines.schedule(s, dropped, deadlines.REMINDER, due)
                deadlines.queue_held_timers(s)
                assert len(s.scalars(select(Timer)).all()) == 2  # a query inserts the queue
                raise RuntimeError("falla")
        except RuntimeError:
            pass
    with sqlite_db.session() as s:
        assert [t.case_id for t in s.scalars(select(Timer))] == [kept.id]
