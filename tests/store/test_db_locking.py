"""Storage layer concurrency: SQLite settings and write locks, row claims, advisory locks."""

from __future__ import annotations

import sqlite3

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.store.db import Database, advisory_lock, advisory_unlock, claim_rows
from mailflow.store.models import Case, InboxMessage
from tests.store.test_db import make_inbox


def test_sqlite_pragmas(sqlite_db: Database) -> None:
    assert sqlite_db.dialect == "sqlite"
    with sqlite_db.engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
        }
    assert pragma == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "synchronous": 1,
        "foreign_keys": 1,
    }


def _other_writer_can_begin(path: str) -> bool:
    raw = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        raw.close()


def test_sqlite_write_sessions_take_the_write_lock_at_begin(sqlite_db: Database) -> None:
    path = str(sqlite_db.url.database)
    with sqlite_db.session() as s:
        s.execute(select(1))  # a read only: the lock is held from BEGIN IMMEDIATE on
        assert not _other_writer_can_begin(path)
    assert _other_writer_can_begin(path)
    with sqlite_db.session(readonly=True) as s:
        s.execute(select(func.count()).select_from(Case))
        assert _other_writer_can_begin(path)


def _new_ids(session: Session, limit: int) -> list[int]:
    stmt = (
        select(InboxMessage)
        .where(InboxMessage.status == "new")
        .order_by(InboxMessage.id)
        .limit(limit)
    )
    rows = claim_rows(session, stmt)
    for row in rows:
        row.status = "processing"
    session.flush()
    return [row.id for row in rows]


def test_claims_on_postgres_skip_rows_locked_by_another_worker(pg_db: Database) -> None:
    with pg_db.session() as s:
        s.add_all(make_inbox(uid) for uid in range(1, 11))
    with pg_db.session() as first, pg_db.session() as second:
        mine = _new_ids(first, 6)  # still uncommitted: its rows are locked
        theirs = _new_ids(second, 10)
    assert len(mine) == 6 and len(theirs) == 4
    assert set(mine).isdisjoint(theirs) and set(mine) | set(theirs) == set(range(1, 11))


def test_claims_on_sqlite_run_one_writer_at_a_time(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        s.add_all(make_inbox(uid) for uid in range(1, 11))
    with sqlite_db.session() as first:
        mine = _new_ids(first, 6)
    with sqlite_db.session() as second:
        theirs = _new_ids(second, 10)
    assert mine == [1, 2, 3, 4, 5, 6] and theirs == [7, 8, 9, 10]


def test_advisory_lock_elects_one_leader_on_postgres(pg_db: Database) -> None:
    with pg_db.engine.connect() as leader, pg_db.engine.connect() as follower:
        assert advisory_lock(leader, 42)
        assert not advisory_lock(follower, 42)
        assert advisory_lock(follower, 43)
        assert advisory_unlock(leader, 42)
        assert advisory_lock(follower, 42)
        advisory_unlock(follower, 42)
        advisory_unlock(follower, 43)


def test_advisory_lock_is_always_granted_on_sqlite(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as one, sqlite_db.engine.connect() as two:
        assert advisory_lock(one, 42) and advisory_lock(two, 42)
