"""The batched engine: one write transaction per batch, a savepoint per message, ingestion
overlapped with processing, and nothing half-done when a batch is killed."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.runners import engine
from mailflow.runners.inbox import MAX_ATTEMPTS, release_all_claims, store_many, store_raw
from mailflow.runners.service import process_waiting, run_once
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent, InboxMessage
from tests.support.dovecot import DovecotAccount
from tests.support.mail_requests import request
from tests.support.mailservice import write_config
from tests.support.waiting import GENEROUS_SECONDS, PROCESS_EXIT_SECONDS

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(sqlite_db: Database) -> App:
    app = App(load_settings(REPO / "config.yaml", env={}))
    app.__dict__["database"] = sqlite_db  # the cached_property, pointed at the test database
    return app


def _store(db: Database, n: int) -> list[int]:
    with db.session() as s:
        rows = [store_raw(s, request(i), mailbox="m", source="smtp", now=NOW) for i in range(n)]
        s.flush()
        return [row.id for row in rows if row is not None]


def test_a_bad_message_in_a_batch_is_set_aside_while_the_others_commit(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "TRANSACTION_SECONDS", GENEROUS_SECONDS)
    ids = _store(app.database, 5)
    bad = ids[2]
    sessions: dict[int, int] = {}

    def process(app_: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
        sessions[row.id] = id(session)
        session.add(CaseEvent(at=now, actor="t", kind="note", inbox_message_id=row.id))
        if row.id == bad:
            raise ValueError("PDF ilegible")

    assert process_waiting(app, lambda: NOW, "w1", process) == (5, 1)
    assert len(set(sessions.values())) == 1  # the five messages: one write transaction
    with app.database.session(readonly=True) as s:
        rows = {r.id: r for r in s.scalars(select(InboxMessage))}
        events = s.execute(select(CaseEvent.inbox_message_id, CaseEvent.kind)).all()
    assert {i: rows[i].status for i in ids} == {i: "done" if i != bad else "set_aside" for i in ids}
    assert rows[bad].attempts == MAX_ATTEMPTS and rows[bad].last_error == "ValueError: PDF ilegible"
    assert sorted(events) == sorted(
        [(i, "note") for i in ids if i != bad] + [(bad, "exception")]
    )  # the bad message's tries were rolled back, the others' writes committed


def test_a_long_write_transaction_is_committed_and_the_batch_goes_on_in_the_next(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "TRANSACTION_SECONDS", 0.0)  # commit after every message
    ids = _store(app.database, 3)
    sessions: list[Session] = []  # kept alive, so their ids are distinct

    def process(app_: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
        sessions.append(session)
        row.disposition = "ignore"

    assert process_waiting(app, lambda: NOW, "w1", process) == (3, 0)
    assert len({id(s) for s in sessions}) == len(ids)
    with app.database.session(readonly=True) as s:
        assert {r.status for r in s.scalars(select(InboxMessage))} == {"done"}


def test_a_batch_whose_commit_fails_is_written_message_by_message(app: App) -> None:
    ids = _store(app.database, 3)
    seen: list[int] = []

    def process(app_: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
        seen.append(row.id)
        session.add(CaseEvent(at=now, actor="t", kind="note", inbox_message_id=row.id))
        if len(seen) == len(ids):  # the batch's last message: make its commit fail
            session.info["fail_commit"] = True

    def before_commit(session: Session) -> None:
        if not session.in_nested_transaction() and session.info.pop("fail_commit", False):
            raise RuntimeError("disco lleno al confirmar")

    event.listen(Session, "before_commit", before_commit)
    try:
        assert process_waiting(app, lambda: NOW, "w1", process) == (3, 0)
    finally:
        event.remove(Session, "before_commit", before_commit)
    assert seen == ids + ids  # the whole batch again, one transaction each
    with app.database.session(readonly=True) as s:
        notes = s.scalars(select(CaseEvent.inbox_message_id).where(CaseEvent.kind == "note"))
        assert sorted(notes) == ids  # once each: the failed batch left nothing
        assert {r.status for r in s.scalars(select(InboxMessage))} == {"done"}


KILLED_BATCH = """
import datetime as dt, os, signal, sys
from pathlib import Path
from mailflow.runners import engine
from mailflow.app import App
from mailflow.config import load_settings
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent
from mailflow.runners.service import process_waiting

app = App(load_settings(Path(sys.argv[1]) / "config.yaml", env={}))
app.__dict__["database"] = Database(sys.argv[2])
seen = []

def process(app, session, row, now):
    session.add(CaseEvent(at=now, actor="t", kind="note", inbox_message_id=row.id))
    row.disposition = "ignore"
    seen.append(row.id)
    if len(seen) == 3:  # mid-batch: two messages written in this transaction already
        session.flush()
        os.kill(os.getpid(), signal.SIGKILL)

process_waiting(app, lambda: dt.datetime.now(dt.UTC), "killed", process)
"""


def test_a_killed_batch_leaves_nothing_half_done(app: App, tmp_path: Path) -> None:
    ids = _store(app.database, 5)
    url = app.database.url.render_as_string(hide_password=False)
    code = textwrap.dedent(KILLED_BATCH)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO), url],
        cwd=REPO,
        timeout=PROCESS_EXIT_SECONDS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr[-3000:]
    with app.database.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage).order_by(InboxMessage.id)).all()
        assert [(r.status, r.claimed_by, r.disposition) for r in rows] == [
            ("processing", "killed", None)
        ] * 5  # claimed, but none of the batch's writes survived
        assert s.scalars(select(CaseEvent)).all() == []
    assert release_all_claims(app.database, NOW) == 5

    def process(app_: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
        session.add(CaseEvent(at=now, actor="t", kind="note", inbox_message_id=row.id))

    assert process_waiting(app, lambda: NOW, "w2", process) == (5, 0)
    with app.database.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage).order_by(InboxMessage.id)).all()
        # the killed batch's rows were retried alone: no attempt counted against them
        assert [(r.status, r.attempts, r.claimed_alone) for r in rows] == [("done", 0, True)] * 5
        notes = s.scalars(select(CaseEvent.inbox_message_id).where(CaseEvent.kind == "note"))
        assert sorted(notes) == ids


def test_store_many_keeps_store_raw_semantics(sqlite_db: Database) -> None:
    raw, other = request(1), request(2)
    with sqlite_db.session() as s:
        first = store_raw(s, raw, mailbox="m", source="imap", uidvalidity=7, uid=1, now=NOW)
        assert first is not None
        s.flush()
        rows = store_many(
            s,
            [(1, raw), (2, raw), (3, other), (4, other), (3, other)],
            mailbox="m",
            source="imap",
            uidvalidity=7,
            now=NOW,
        )
        known, again, fresh, copy, same_uid = rows
        assert known is None and same_uid is None  # this server copy is stored already
        assert again is not None and again.status == "duplicate"
        assert again.last_error is not None and f"mensaje {first.id} " in again.last_error
        assert fresh is not None and fresh.status == "new" and fresh.id
        assert copy is not None and copy.status == "duplicate"
        assert copy.last_error is not None and f"mensaje {fresh.id} " in copy.last_error
    with sqlite_db.session() as s, pytest.raises(ValueError, match="origen de correo"):
        store_many(s, [(None, raw)], mailbox="m", source="fax", now=NOW)


def test_ingestion_overlaps_processing(tmp_path: Path, imap_account: DovecotAccount) -> None:
    raws = [request(i) for i in range(20)]
    imap_account.append(raws)
    config = write_config(tmp_path, imap_account.url(), None, imap={"batch_size": 5})
    app = App(load_settings(config, env={}))
    app.database.migrate()
    processing = threading.Event()
    chunks: list[int] = []

    def clock() -> dt.datetime:
        if threading.current_thread().name == "mailflow-ingest":
            chunks.append(1)
            if len(chunks) > 1:  # later chunks wait until the first one is being processed
                assert processing.wait(GENEROUS_SECONDS), "processing waited for ingestion"
        return dt.datetime.now(dt.UTC)

    def process(app_: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
        row.disposition = "ignore"
        processing.set()

    stats = run_once(app, clock, process=process, sweep=None)
    assert (stats.ingested, stats.processed, stats.errors) == (20, 20, [])
    assert len(chunks) >= 4
    with app.database.session(readonly=True) as s:
        assert {r.status for r in s.scalars(select(InboxMessage))} == {"done"}
    app.database.dispose()


def test_a_failed_claim_does_not_strand_the_batch_in_hand(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database connection drops while the next batch is being claimed: the batch already
    claimed and read is written at once, not left claimed until its lease runs out."""
    ids = _store(app.database, 4)
    real = engine.claim
    calls = [0]

    def flaky(*args: object, **kwargs: object) -> list[InboxMessage]:
        calls[0] += 1
        if calls[0] == 2:  # claiming the second batch, while the first is in hand
            raise OSError("server closed the connection unexpectedly")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "claim", flaky)
    worker = engine.Engine(app, "w1", lambda: NOW, batch=2)
    try:
        assert worker.drain() == (4, 0)
    finally:
        worker.close()
    with app.database.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage).where(InboxMessage.id.in_(ids))).all()
    assert {(r.status, r.claimed_by) for r in rows} == {("done", None)}
