"""txcache.lookups: a memory of look-ups in one table for the rest of a transaction, which ends
when the transaction writes to that table or rolls a savepoint back."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.store import coreflush
from mailflow.store.db import Database
from mailflow.store.models import Applicant, User
from mailflow.store.txcache import flush_as_a_query_would, lookups


def _user(name: str) -> User:
    return User(username=name, full_name=name.title(), role="staff", password_hash="x")


def test_the_memory_lasts_the_transaction_and_ends_when_its_table_is_written(
    sqlite_db: Database,
) -> None:
    with sqlite_db.session() as s:
        memory = lookups(s, User)
        assert memory == {}
        memory["ana"] = None
        assert lookups(s, User) is memory
        s.add(Applicant(full_name="Zoe Ruiz"))  # another table: kept
        assert lookups(s, User) is memory
        s.add(_user("ana"))
        assert lookups(s, User) is None  # added: forgotten for the rest of the transaction
        s.flush()
        assert lookups(s, User) is None
        assert lookups(s, Applicant) is None
    with sqlite_db.session() as s:
        assert lookups(s, User) == {}  # a new transaction starts empty
        ana = s.scalars(select(User)).one()
        assert lookups(s, User) == {}
        ana.full_name = "Ana Quispe"
        assert lookups(s, User) is None  # changed, not flushed yet


def test_a_rolled_back_savepoint_forgets_what_was_found(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        savepoint = s.begin_nested()
        s.add(_user("ana"))
        s.flush()  # written before anything was remembered: nothing marks the table
        memory = lookups(s, User)
        assert memory is not None
        memory["ana"] = s.scalars(select(User)).one()
        savepoint.rollback()
        assert lookups(s, User) == {}


def test_flush_as_a_query_would_respects_no_autoflush(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        s.add(_user("ana"))
        with s.no_autoflush:
            flush_as_a_query_would(s)
            assert s.new
        flush_as_a_query_would(s)
        assert not s.new


def test_a_change_written_by_coreflush_ends_the_memory(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        s.add(_user("ana"))
    with sqlite_db.session() as s:
        ana = s.scalars(select(User)).one()
        memory = lookups(s, User)
        assert memory is not None
        memory[("ana",)] = {"ana": ana}  # ana is active: remembered
        ana.active = False
        coreflush.flush(s)  # the change reaches the database with a Core UPDATE
        assert not s.dirty
        assert lookups(s, User) is None  # the table was written: what was found may be stale
