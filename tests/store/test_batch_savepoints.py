"""Many messages in one transaction, a savepoint each, give what one transaction each gives.

The pipeline queues audit events and thread entries (mailflow.store.bulkrows) and remembers facts
per transaction (mailflow.store.txcache); a message whose savepoint rolls back must leave nothing
behind, and the others must see each other's queued rows (duplicates, threads, timers).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from mailflow.app import App
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, CaseMessage, InboxMessage, OutboxMessage, Timer
from tests.store.test_db import make_case
from tests.support.cases_support import DATOS, MONDAY, mail, make_app, store

SIN_TELEFONO = "\n".join(line for line in DATOS.splitlines() if "Teléfono" not in line)
TUESDAY = MONDAY + dt.timedelta(days=1)
MARIA = "maria.rojas@example.org"
PEDRO = "pedro.diaz@example.org"


class Boom(Exception):
    """The failure of one message in the middle of the batch."""


def _messages() -> list[tuple[bytes, dt.datetime, bool]]:
    """(raw, when, fails) in processing order."""
    first = mail("Actualización de datos", "Buenos días\n" + DATOS, message_id="<a-1@example.org>")
    return [
        (first, MONDAY, False),
        (
            mail(
                "Actualización de datos",
                SIN_TELEFONO,
                sender=MARIA,
                name="María Rojas",
                message_id="<b-1@example.org>",
            ),
            MONDAY,
            False,
        ),
        (
            mail(
                "Actualización de datos",
                DATOS,
                sender=PEDRO,
                name="Pedro Díaz",
                message_id="<c-1@example.org>",
            ),
            MONDAY,
            True,
        ),  # rolled back
        (first, MONDAY, False),  # the same message again: a duplicate
        (
            mail(
                "RE: [EXP-2026-000002] Actualización de datos: Observación",
                "Les envío lo que faltaba.\nTeléfono: 987654321\n",
                sender=MARIA,
                name="María Rojas",
                message_id="<b-2@example.org>",
            ),
            TUESDAY,
            False,
        ),
        (
            mail(
                "¿Cuál es el estado de mi trámite?",
                "Quisiera saber cómo va mi solicitud.",
                message_id="<a-2@example.org>",
            ),
            TUESDAY,
            False,
        ),
        (
            mail(
                "Actualización de datos",
                DATOS,
                sender=PEDRO,
                name="Pedro Díaz",
                message_id="<c-2@example.org>",
            ),
            TUESDAY,
            False,
        ),
    ]


def _one_by_one(app: App) -> None:
    for raw, when, fails in _messages():
        try:
            with app.database.session() as s:
                row = store(s, raw, when)
                s.commit()
        except Boom:  # pragma: no cover - store never fails
            raise
        try:
            with app.database.session() as s:
                again = s.get(InboxMessage, row.id)
                assert again is not None
                process_inbox_message(app, s, again, when)
                if fails:
                    raise Boom
        except Boom:
            pass


def _in_one_transaction(app: App) -> None:
    with app.database.session() as s:
        ids = [(store(s, raw, when).id, when, fails) for raw, when, fails in _messages()]
    with app.database.session() as s:
        for row_id, when, fails in ids:
            try:
                with s.begin_nested():
                    row = s.get(InboxMessage, row_id)
                    assert row is not None
                    process_inbox_message(app, s, row, when)
                    if fails:
                        raise Boom
            except Boom:
                pass


def _snapshot(app: App) -> dict[str, Any]:
    """Everything the pipeline wrote, with generated identifiers replaced by their order."""
    with app.database.session(readonly=True) as s:
        outs = list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        alias = {o.message_id: f"out{i}" for i, o in enumerate(outs)}
        out_ids = {o.id: i for i, o in enumerate(outs)}
        events = list(s.scalars(select(CaseEvent).order_by(CaseEvent.id)))
        event_ids = {e.id: i for i, e in enumerate(events)}

        def data(d: dict[str, Any]) -> dict[str, Any]:
            d = dict(d)
            if "cause" in d:
                d["cause"] = event_ids.get(d["cause"])
            if "outbox_id" in d:
                d["outbox_id"] = out_ids.get(d["outbox_id"])
            return d

        return {
            "inbox": [
                (r.status, r.disposition, r.tramite, r.case_id)
                for r in s.scalars(select(InboxMessage).order_by(InboxMessage.id))
            ],
            "cases": [
                (
                    c.id,
                    c.number,
                    c.state,
                    c.tramite,
                    c.due_date,
                    c.flags,
                    c.sla,
                    c.priority,
                    c.fields,
                    c.applicant_email,
                    c.closed_at,
                )
                for c in s.scalars(select(Case).order_by(Case.id))
            ],
            "events": [
                (
                    e.case_id,
                    e.inbox_message_id,
                    e.actor,
                    e.kind,
                    e.event,
                    e.from_state,
                    e.to_state,
                    e.reason,
                    data(e.data),
                )
                for e in events
            ],
            "outbox": [
                (o.case_id, o.kind, o.to_addr, o.subject, o.dedupe_key.split(":")[-1]) for o in outs
            ],
            "thread": [
                (
                    m.case_id,
                    m.direction,
                    m.inbox_message_id,
                    alias.get(m.message_id, m.message_id),
                    None if m.outbox_id is None else out_ids[m.outbox_id],
                )
                for m in s.scalars(select(CaseMessage).order_by(CaseMessage.id))
            ],
            "timers": [
                (t.case_id, t.kind, t.due_at, t.cancelled_at, t.fired_at)
                for t in s.scalars(select(Timer).order_by(Timer.case_id, Timer.kind, Timer.due_at))
            ],
        }


def _twin(tmp_path: Path, db: Database, name: str) -> Database:
    path = tmp_path / name
    shutil.copyfile(str(db.url.database), path)
    return Database(f"sqlite:///{path}")


def _compare(single_db: Database, batch_db: Database, tmp_path: Path) -> None:
    single = make_app(tmp_path / "a", single_db)
    batch = make_app(tmp_path / "b", batch_db)
    _one_by_one(single)
    _in_one_transaction(batch)
    expected, got = _snapshot(single), _snapshot(batch)
    assert [r[:2] for r in expected["inbox"]] == [
        ("done", "accept"), ("done", "observe"), ("processing", None), ("done", "ignore"),
        ("done", "accept"), ("done", "review"), ("done", "accept"),
    ]  # fmt: skip
    assert [c[1] for c in expected["cases"]] == [
        "EXP-2026-000001", "EXP-2026-000002", "EXP-2026-000003",
    ]  # fmt: skip
    assert not any(e[1] == 3 for e in expected["events"])  # the failed message left nothing
    for key in expected:
        assert got[key] == expected[key], key


def test_batch_with_savepoints_equals_one_transaction_each(
    tmp_path: Path, sqlite_db: Database
) -> None:
    other = _twin(tmp_path, sqlite_db, "batch.db")  # the migrated, still empty database
    try:
        _compare(sqlite_db, other, tmp_path)
    finally:
        other.dispose()


def test_batch_with_savepoints_equals_one_transaction_each_on_postgresql(
    tmp_path: Path, pg_db: Database
) -> None:
    from tests.support.fixtures_db import fresh_pg_database

    with fresh_pg_database("mailflow_batch") as url:
        other = Database(url)
        try:
            _compare(pg_db, other, tmp_path)
        finally:
            other.dispose()


def test_rows_queued_in_a_rolled_back_savepoint_are_dropped(sqlite_db: Database) -> None:
    from mailflow.store.audit import record

    def kinds(s: Session) -> list[str]:
        return list(s.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))

    with sqlite_db.session() as s:
        record(s, "a", "antes", at=MONDAY)
        with s.begin_nested():
            record(s, "b", "guardado", at=MONDAY)
        try:
            with s.begin_nested():
                record(s, "c", "descartado", at=MONDAY)
                with s.begin_nested():
                    record(s, "d", "descartado también", at=MONDAY)
                raise Boom
        except Boom:
            pass
        record(s, "e", "después", at=MONDAY)
        assert kinds(s) == ["a", "b", "e"]  # a query sees what is queued
        record(s, "f", "al final", at=MONDAY)
    with sqlite_db.session(readonly=True) as s:
        assert kinds(s) == ["a", "b", "e", "f"]
    try:
        with sqlite_db.session() as s:
            record(s, "g", "revertido", at=MONDAY)
            raise Boom
    except Boom:
        pass
    with sqlite_db.session(readonly=True) as s:
        assert kinds(s) == ["a", "b", "e", "f"]


def test_a_rolled_back_savepoint_forgets_what_it_wrote_without_the_orm(
    tmp_path: Path, sqlite_db: Database
) -> None:
    """The case inserted without the unit of work is expunged, the inbox row finished with a
    plain UPDATE is expired (it reads its stored status again), and the case's held timers are gone."""
    app = make_app(tmp_path, sqlite_db)
    with app.database.session() as s:
        row_id = store(s, mail("Actualización de datos", DATOS), MONDAY).id
    with app.database.session() as s:
        row = s.get(InboxMessage, row_id)
        assert row is not None
        before = row.status
        try:
            with s.begin_nested():
                process_inbox_message(app, s, row, MONDAY)
                assert row.status == "done" and row.case_id is not None
                case = s.get(Case, row.case_id)
                assert case is not None
                raise Boom
        except Boom:
            pass
        assert case not in s
        assert row.status == before != "done" and row.case_id is None
        assert s.scalars(select(Timer)).all() == []
        process_inbox_message(app, s, row, MONDAY)  # the same message again, now for good
        again = s.get(Case, row.case_id)
        assert again is not None and again is not case
    with app.database.session(readonly=True) as s:
        assert s.scalar(select(InboxMessage.status).where(InboxMessage.id == row_id)) == "done"
        assert len(s.scalars(select(Case)).all()) == 1
        assert {t.case_id for t in s.scalars(select(Timer))} <= {again.id}


def test_an_event_inserted_at_once_takes_the_queued_events_and_leaves_the_rest(
    sqlite_db: Database,
) -> None:
    """`record_now` inserts the events still queued ahead of its own, in one statement (ids in
    the order recorded); the thread entries stay queued. A rolled back savepoint queues again
    the outer transaction's events it inserted, and drops its own."""
    from mailflow.cases.case_thread import add_case_message
    from mailflow.store.audit import record, record_now
    from mailflow.store.bulkrows import pending

    messages = cast(Table, CaseMessage.__table__)
    with sqlite_db.session() as s:
        case_id = make_case(s).id
        record(s, "a", "primero", at=MONDAY, case_id=case_id)
        add_case_message(s, case_id=case_id, direction="in", message_id="m-1", at=MONDAY)
        try:
            with s.begin_nested():
                record(s, "b", "descartado", at=MONDAY, case_id=case_id)
                assert record_now(s, "c", "descartado", at=MONDAY, case_id=case_id).id == 3
                assert [r["message_id"] for r in pending(s, messages)] == ["m-1"]
                raise Boom
        except Boom:
            pass
        with s.begin_nested():
            assert record_now(s, "d", "guardado", at=MONDAY, case_id=case_id).id == 2
        assert [r["message_id"] for r in pending(s, messages)] == ["m-1"]
        record(s, "e", "al final", at=MONDAY, case_id=case_id)
    with sqlite_db.session(readonly=True) as s:
        events = s.execute(select(CaseEvent.id, CaseEvent.kind).order_by(CaseEvent.id)).all()
        assert [tuple(e) for e in events] == [(1, "a"), (2, "d"), (3, "e")]
        assert s.scalars(select(CaseMessage.message_id)).all() == ["m-1"]
