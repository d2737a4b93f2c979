"""mailflow.store.coreflush: dirty objects written with one Core UPDATE each write what the
unit of work's flush writes (same statement, same row, same object state afterwards), keep
the optimistic lock on Case.lock_version, and leave everything else to the ORM."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import FetchedValue, Integer, String, create_engine, event, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from mailflow.store import coreflush
from mailflow.store.audit import record
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, InboxMessage
from tests.store.test_db import NOW, make_case, make_inbox

LATER = NOW + dt.timedelta(hours=2)
INSTANT = re.compile(r"\d{4}-\d\d-\d\d \d\d:")  # how SQLite is sent a datetime


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL (and parameters) `engine` runs in the block, SAVEPOINT/RELEASE left out."""
    seen: list[tuple[str, Any]] = []

    def listener(_c: Any, _cur: Any, sql: str, params: Any, *_: Any) -> None:
        if not sql.startswith(("SAVEPOINT", "RELEASE")):
            seen.append((" ".join(sql.split()), params))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def _state(case: Case) -> None:
    case.state = "observado"
    case.due_date = dt.date(2026, 12, 30)
    case.sla = {**case.sla, "subsanacion_deadline": "2026-12-07"}
    case.updated_at = case.updated_at  # the same value: the column's onupdate fills it


def _in_place(case: Case) -> None:
    case.sla["observacion"] = {"dias": 10}  # MutableDict / MutableList: no assignment
    case.flags.append("mensaje_nuevo")
    case.fields["telefono"] = {"value": "987654321"}


def _applicant(case: Case) -> None:
    case.applicant_name = "Ana Pérez Quispe"  # search_text follows (models._fold_search_text)
    case.fields["documento_identidad"] = {"value": "44556677"}


def _nothing(case: Case) -> None:
    case.state = str(case.state)  # set, but equal: no net change
    case.flags = list(case.flags)
    case.updated_at = case.updated_at


def _stamped(case: Case) -> None:
    case.priority = 3
    case.updated_at = LATER  # given: no onupdate


CHANGES: list[Callable[[Case], None]] = [_state, _in_place, _applicant, _nothing, _stamped]


def _twin(tmp_path: Path, db: Database) -> Database:
    db.dispose()
    path = tmp_path / "twin.db"
    shutil.copyfile(str(db.url.database), path)
    return Database(f"sqlite:///{path}")


def _row(db: Database, table: str, row_id: int) -> dict[str, Any]:
    with db.engine.connect() as conn:
        found = conn.execute(text(f"SELECT * FROM {table} WHERE id = :id"), {"id": row_id})
        return dict(found.mappings().one())


class _Written(NamedTuple):
    statements: list[tuple[str, Any]]
    flushes: int  # by the unit of work
    dirty: bool  # still, afterwards
    values: dict[str, Any]  # the object's attributes afterwards


def _write(
    db: Database, case_id: int, change: Callable[[Case], None], flush: Callable[[Session], None]
) -> _Written:
    """Load the case, change it and write it with `flush`, in a savepoint."""
    flushes: list[int] = []
    with db.session() as s:
        event.listen(s, "before_flush", lambda *_: flushes.append(1))
        case = s.get_one(Case, case_id)
        with s.begin_nested():
            change(case)
            with _statements(db.engine) as seen:
                flush(s)
            dirty = case in s.dirty
            values = {a.key: a.value for a in inspect(case).attrs}
    return _Written(seen, len(flushes), dirty, values)


def _without_clock(seen: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The statements with their instants dropped (cases.updated_at's onupdate reads the wall
    clock; dates stay)."""
    return [
        (sql, tuple(p for p in params if not (isinstance(p, str) and INSTANT.match(p))))
        for sql, params in seen
    ]


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.__name__.strip("_"))
def test_a_changed_case_is_written_as_the_unit_of_work_writes_it(
    tmp_path: Path, sqlite_db: Database, change: Callable[[Case], None]
) -> None:
    with sqlite_db.session() as s:
        case_id = make_case(s, fields={"nombres": {"value": "Ana"}}, flags=["a"], sla={}).id
    other = _twin(tmp_path, sqlite_db)
    orm = _write(other, case_id, change, Session.flush)
    ours = _write(sqlite_db, case_id, change, coreflush.flush)
    assert _without_clock(ours.statements) == _without_clock(orm.statements)  # same UPDATE
    assert (ours.flushes, orm.flushes) == (0, 1)
    assert not ours.dirty and not orm.dirty
    clock = {"updated_at"} if change is not _stamped and ours.statements else set()
    for key in ours.values.keys() - clock:
        assert ours.values[key] == orm.values[key], key
    mine, theirs = _row(sqlite_db, "cases", case_id), _row(other, "cases", case_id)
    assert {k: v for k, v in mine.items() if k not in clock} == {
        k: v for k, v in theirs.items() if k not in clock
    }
    assert mine["lock_version"] == (2 if ours.statements else 1)
    if clock:  # written by the onupdate default (the wall clock), and the object knows it
        assert mine["updated_at"] != mine["created_at"]
        assert ours.values["updated_at"].replace(tzinfo=None).isoformat(" ") == mine["updated_at"]
    other.dispose()


def test_rows_without_a_version_and_several_objects_in_key_order(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        ids = [make_case(s, n).id for n in (1, 2, 3)]
        row = make_inbox(None, claimed_by="w1", status="processing")
        s.add(row)
    with sqlite_db.session() as s:
        cases = [s.get_one(Case, i) for i in reversed(ids)]
        inbox = s.get_one(InboxMessage, row.id)
        for case in cases:
            case.priority = 1
        inbox.claimed_by, inbox.status = None, "done"
        with _statements(sqlite_db.engine) as seen:
            coreflush.flush(s)
        assert not s.dirty
    assert [params[-2] for sql, params in seen if sql.startswith("UPDATE cases")] == ids
    inbox_updates = [sql for sql, _ in seen if sql.startswith("UPDATE inbox_messages")]
    assert inbox_updates == [
        "UPDATE inbox_messages SET status=?, claimed_by=? WHERE inbox_messages.id = ?"
    ]
    assert _row(sqlite_db, "inbox_messages", row.id)["claimed_by"] is None


def test_what_it_cannot_write_is_flushed_by_the_orm(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        case_id = make_case(s).id
    flushes: list[int] = []
    with sqlite_db.session() as s:
        event.listen(s, "before_flush", lambda *_: flushes.append(1))
        case = s.get_one(Case, case_id)
        case.state = "observado"
        s.add(CaseEvent(case_id=case_id, at=NOW, actor="sistema", kind="rule", reason="nuevo"))
        with _statements(sqlite_db.engine) as seen:
            coreflush.flush(s)
        assert not s.new and not s.dirty
    assert flushes == [1]  # the new event, by the unit of work
    assert [sql.split(" ")[0:2] for sql, _ in seen] == [["UPDATE", "cases"], ["INSERT", "INTO"]]
    with sqlite_db.session(readonly=True) as s:
        assert s.get_one(Case, case_id).state == "observado"
        assert s.scalars(select(CaseEvent.reason)).all() == ["nuevo"]


def test_a_case_changed_by_someone_else_fails_as_the_orm_does(any_db: Database) -> None:
    """The case was loaded before someone else changed it: the UPDATE matches no row, the
    savepoint rolls back with the rest of its writes, the object is expired and a second try,
    on the version now stored, goes through."""
    with any_db.session() as s:
        case_id = make_case(s).id
    with any_db.session() as s:
        stale = s.get_one(Case, case_id)  # kept after the commit (expire_on_commit=False)
    with any_db.session() as s:  # someone else acts first
        s.get_one(Case, case_id).flags = ["urgente"]
    with any_db.session() as s:
        s.add(stale)
        with pytest.raises(StaleDataError) as failure, s.begin_nested():
            stale.state = "observado"
            record(s, "rule", "no debe quedar", at=NOW, case_id=case_id)
            coreflush.flush(s)
        assert str(failure.value) == (
            "UPDATE statement on table 'cases' expected to update 1 row(s); 0 were matched."
        )
        assert stale.lock_version == 2 and stale.state == "recibido"  # read again
        with s.begin_nested():
            stale.state = "observado"
            coreflush.flush(s)
    with any_db.session(readonly=True) as s:
        stored = s.get_one(Case, case_id)
        assert (stored.state, stored.flags, stored.lock_version) == ("observado", ["urgente"], 3)
        assert s.scalars(select(CaseEvent)).all() == []


def test_a_rolled_back_savepoint_expires_what_it_wrote(any_db: Database) -> None:
    with any_db.session() as s:
        case_id = make_case(s).id
    with any_db.session() as s:
        case = s.get_one(Case, case_id)
        with pytest.raises(ZeroDivisionError), s.begin_nested():
            case.state = "observado"
            coreflush.flush(s)
            assert case.lock_version == 2 and case not in s.dirty
            _ = 1 / 0
        assert (case.state, case.lock_version) == ("recibido", 1)  # read again


class _Other(DeclarativeBase):
    pass


class _Stamped(_Other):
    """A table whose UPDATE gets a value from the database: not plain."""

    __tablename__ = "stamped"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String)
    changed: Mapped[int] = mapped_column(Integer, default=0, server_onupdate=FetchedValue())


def test_a_mapper_that_is_not_plain_is_left_to_the_unit_of_work() -> None:
    engine = create_engine("sqlite://")
    _Other.metadata.create_all(engine)
    flushes: list[int] = []
    with Session(engine) as s:
        s.add(_Stamped(id=1, name="a"))
        s.commit()
        event.listen(s, "before_flush", lambda *_: flushes.append(1))
        s.get_one(_Stamped, 1).name = "b"
        coreflush.flush(s)
        assert flushes == [1] and not s.dirty
        s.commit()
        assert s.scalars(select(_Stamped.name)).all() == ["b"]
