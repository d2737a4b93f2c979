"""Inbox semantics: stored once, claimed, retried a bounded number of times, set aside."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.runners.inbox import MAX_ATTEMPTS, claim_batch, process_claimed, store_raw
from mailflow.runners.inbox_claims import POSTPONE
from mailflow.runners.sandbox import Sandbox
from mailflow.runners.service import process_waiting
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent, InboxMessage
from tests.support.mail_requests import request

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(sqlite_db: Database) -> App:
    app = App(load_settings(REPO / "config.yaml", env={}))
    app.__dict__["database"] = sqlite_db  # the cached_property, pointed at the test database
    return app


def test_same_server_copy_is_stored_once_and_resync_marks_duplicates(sqlite_db: Database) -> None:
    raw = request(1)
    with sqlite_db.session() as s:
        first = store_raw(s, raw, mailbox="m", source="imap", uidvalidity=7, uid=1, now=NOW)
        assert first is not None and first.status == "new" and first.message_id
        assert store_raw(s, raw, mailbox="m", source="imap", uidvalidity=7, uid=1, now=NOW) is None
        again = store_raw(s, raw, mailbox="m", source="imap", uidvalidity=8, uid=1, now=NOW)
        assert again is not None and again.status == "duplicate"
        edited = raw.replace(b"Persona 1", b"Persona uno")
        other = store_raw(s, edited, mailbox="m", source="smtp", now=NOW)
        assert other is not None and other.status == "new"  # same Message-ID, other content


def _failing(app: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
    session.add(CaseEvent(at=now, actor="t", kind="note", inbox_message_id=row.id))
    raise ValueError("PDF ilegible")


def _ok(app: App, session: Session, row: InboxMessage, now: dt.datetime) -> None:
    row.disposition = "ignore"


def test_failure_is_retried_then_set_aside_with_an_exception_event(app: App) -> None:
    db = app.database
    with db.session() as s:
        row = store_raw(s, request(2), mailbox="m", source="smtp", now=NOW)
        assert row is not None
        s.flush()
        row_id = row.id
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert claim_batch(db, "w1", 10, NOW) == [row_id]
        status = process_claimed(app, row_id, "w1", NOW, process=_failing)
        assert status == ("set_aside" if attempt == MAX_ATTEMPTS else "new")
    assert claim_batch(db, "w1", 10, NOW) == []
    with db.session(readonly=True) as s:
        stored = s.get(InboxMessage, row_id)
        assert stored is not None and stored.attempts == MAX_ATTEMPTS
        assert stored.last_error == "ValueError: PDF ilegible"
        events = s.scalars(select(CaseEvent).where(CaseEvent.inbox_message_id == row_id)).all()
    assert [e.kind for e in events] == ["exception"]  # the failed tries' writes rolled back
    assert events[0].reason.startswith("Error al procesar: ValueError: PDF ilegible")


def test_claims_are_exclusive_and_expired_leases_are_reclaimed(app: App) -> None:
    db = app.database
    with db.session() as s:
        for i in range(3):
            store_raw(s, request(10 + i), mailbox="m", source="smtp", now=NOW)
    lease = dt.timedelta(minutes=1)
    mine = claim_batch(db, "w1", 2, NOW, lease)
    theirs = claim_batch(db, "w2", 5, NOW, lease)
    assert len(mine) == 2 and len(theirs) == 1 and not set(mine) & set(theirs)
    assert process_claimed(app, mine[0], "w2", NOW, process=_ok) == "lost"
    assert process_claimed(app, mine[0], "w1", NOW, process=_ok) == "done"
    later = NOW + 2 * lease  # w1 died holding mine[1] in a batch: it is retried alone
    assert claim_batch(db, "w3", 5, later, lease) == [mine[1]]
    with db.session(readonly=True) as s:
        row = s.get(InboxMessage, mine[1])
        assert row is not None and row.claimed_by == "w3" and row.claimed_alone
        assert row.attempts == 0  # a batch-mate of a dead run is no suspect
    assert claim_batch(db, "w3", 5, later, lease) == theirs  # w2 died too: alone as well


def test_only_deaths_while_claimed_alone_count_until_the_message_is_set_aside(app: App) -> None:
    """A message that kills its process: its batch-mates are answered, it goes to staff."""
    db = app.database
    with db.session() as s:
        for i in range(4):
            store_raw(s, request(20 + i), mailbox="m", source="smtp", now=NOW)
    lease = dt.timedelta(minutes=1)
    batch = claim_batch(db, "w1", 10, NOW, lease)  # the run dies with the whole batch claimed
    assert len(batch) == 4
    poison, *mates = sorted(batch)
    at = NOW
    for death in range(1, MAX_ATTEMPTS + 1):
        at += 2 * lease
        assert claim_batch(db, f"w{death + 1}", 10, at, lease) == [poison]  # dies again, alone
        with db.session(readonly=True) as s:
            stored = s.get(InboxMessage, poison)
            assert stored is not None and stored.attempts == death - 1
    at += 2 * lease
    for mate in mates:  # the poison is set aside on the way; each mate is retried alone
        assert claim_batch(db, "w9", 10, at, lease) == [mate]
        assert process_claimed(app, mate, "w9", at, process=_ok) == "done"
    with db.session(readonly=True) as s:
        stored = s.get(InboxMessage, poison)
        assert stored is not None and stored.status == "set_aside"
        assert stored.attempts == MAX_ATTEMPTS
        done = s.scalars(select(InboxMessage).where(InboxMessage.id.in_(mates))).all()
        assert {(r.status, r.attempts) for r in done} == {("done", 0)}


def test_unknown_source_is_an_error_not_a_silent_duplicate(sqlite_db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    with sqlite_db.session() as s, pytest.raises(ValueError, match="origen de correo desconocido"):
        store_raw(s, b"Subject: x\n\nhola", mailbox="INBOX", source="fax", now=now)


def test_when_no_reader_can_start_the_messages_wait_without_an_attempt(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of processes (fork fails): nothing is set aside, nobody loses their answer; the
    messages are processed once the machine can start readers again."""
    with app.database.session() as s:
        for i in range(3):
            store_raw(s, request(30 + i), mailbox="m", source="smtp", now=NOW)

    def no_fork(_self: Sandbox) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(Sandbox, "_spawn", no_fork)
        assert process_waiting(app, lambda: NOW, "w1") == (0, 0)
    with app.database.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage)).all()
        assert {(r.status, r.attempts) for r in rows} == {("processing", 0)}
        assert all("no se pudo iniciar" in (r.last_error or "") for r in rows)
        assert s.scalars(select(CaseEvent).where(CaseEvent.kind == "exception")).all() == []
    later = NOW + 2 * POSTPONE
    assert process_waiting(app, lambda: later, "w2") == (3, 0)
    with app.database.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage)).all()
        assert {(r.status, r.attempts, r.disposition is not None) for r in rows} == {
            ("done", 0, True)
        }
