"""The sender sends a batch over one SMTP session and records it in one transaction; a kill
between the server's 250 and that record never sends a reply twice (the sent-journal)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import smtplib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailflow.runners import sender
from mailflow.runners.journal import JOURNALED, SentJournal
from mailflow.runners.sender import drain_outbox, release_sending
from mailflow.runners.transport import SmtpTransport, parse_smtp_url
from mailflow.store.db import Database
from mailflow.store.models import DeliveryAttempt, OutboxMessage
from tests.runners.test_sender import NOW, _outbox, _settings
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import GENEROUS_SECONDS


class CountingSmtp(SmtpTransport):
    """The real SMTP transport, counting connections; `fail_for` addresses raise once."""

    def __init__(self, url: str, fail_for: set[str] | None = None) -> None:
        super().__init__(parse_smtp_url(url))
        self.connects = 0
        self.fail_for = set(fail_for or ())

    def _connect(self) -> smtplib.SMTP:
        self.connects += 1
        return super()._connect()

    def send(self, row: OutboxMessage) -> str:
        if row.to_addr in self.fail_for:
            self.fail_for.discard(row.to_addr)
            raise smtplib.SMTPServerDisconnected("conexión cortada (prueba)")
        return super().send(row)


def _count_records(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = sender._record_batch

    def counting(*args: Any, **kwargs: Any) -> None:
        sizes.append(len(args[3]))
        real(*args, **kwargs)

    monkeypatch.setattr(sender, "_record_batch", counting)
    return sizes


def test_one_smtp_session_and_one_record_per_batch(
    sqlite_db: Database, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    _outbox(sqlite_db, 7)
    sizes = _count_records(monkeypatch)
    transport = CountingSmtp(smtp_sink.url)
    settings = _settings(smtp_sink.url)
    stats = drain_outbox(settings, sqlite_db, lambda: NOW, transport=transport, batch=3)
    assert (stats.sent, stats.retried, stats.failed) == (7, 0, 0)
    assert transport.connects == 1  # seven MAIL/RCPT/DATA transactions on one connection
    assert sizes == [3, 3, 1]  # one database transaction per batch
    assert sorted(c.rcpt_tos[0] for c in smtp_sink.snapshot()) == sorted(
        f"p{i}@example.org" for i in range(7)
    )
    with sqlite_db.session(readonly=True) as s:
        assert {r.status for r in s.scalars(select(OutboxMessage))} == {"sent"}
        assert len(s.scalars(select(DeliveryAttempt)).all()) == 7


def test_a_failure_mid_batch_reconnects_and_is_retried_later(
    sqlite_db: Database, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    _outbox(sqlite_db, 4)
    sizes = _count_records(monkeypatch)
    transport = CountingSmtp(smtp_sink.url, fail_for={"p1@example.org"})
    settings = _settings(smtp_sink.url)
    stats = drain_outbox(settings, sqlite_db, lambda: NOW, transport=transport, batch=10)
    assert (stats.sent, stats.retried, stats.failed) == (3, 1, 0)
    assert transport.connects == 2 and sizes == [4]
    assert "SMTPServerDisconnected" in stats.errors[0]
    with sqlite_db.session(readonly=True) as s:
        row = s.scalars(
            select(OutboxMessage).where(OutboxMessage.to_addr == "p1@example.org")
        ).one()
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.next_attempt_at == NOW + dt.timedelta(seconds=10)  # the usual back-off
    later = NOW + dt.timedelta(seconds=10)
    assert drain_outbox(settings, sqlite_db, lambda: later).sent == 1
    assert len(smtp_sink.snapshot()) == 4


def _killed_before_recording(url: str, smtp_url: str, journal: Path) -> None:
    """In a child process: send a batch, then die by SIGKILL before recording it."""
    sender._record_batch = lambda *_a, **_k: os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[assignment]
    drain_outbox(_settings(smtp_url), Database(url), lambda: NOW, journal=SentJournal(journal))


def test_a_kill_between_the_250_and_the_record_sends_nothing_twice(
    sqlite_db: Database, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    _outbox(sqlite_db, 3)
    journal = tmp_path / "sent.journal"
    url = str(sqlite_db.engine.url)
    sqlite_db.dispose()
    child = multiprocessing.get_context("fork").Process(
        target=_killed_before_recording, args=(url, smtp_sink.url, journal)
    )
    child.start()
    child.join(GENEROUS_SECONDS)
    assert child.exitcode == -signal.SIGKILL
    assert len(smtp_sink.snapshot()) == 3  # the server accepted all three
    assert sorted(journal.read_text().split()) == ["1", "2", "3"]
    with sqlite_db.session(readonly=True) as s:
        assert {r.status for r in s.scalars(select(OutboxMessage))} == {"sending"}
    # start-up after the kill: the journal is replayed before claims are released
    settings = _settings(smtp_sink.url)
    assert SentJournal(journal).replay(sqlite_db, NOW, settings) == 3
    assert release_sending(sqlite_db, NOW) == 0 and not journal.exists()
    assert drain_outbox(settings, sqlite_db, lambda: NOW + dt.timedelta(hours=1)).sent == 0
    assert len(smtp_sink.snapshot()) == 3
    with sqlite_db.session(readonly=True) as s:
        assert {r.status for r in s.scalars(select(OutboxMessage))} == {"sent"}
        answers = [a.smtp_response for a in s.scalars(select(DeliveryAttempt))]
        assert answers == [JOURNALED] * 3


def test_a_failed_record_is_retried_from_the_journal_without_sending_again(
    sqlite_db: Database, smtp_sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the record for longer than the retries: the rows stay "sending";
    when their lease runs out this process records them from its journal, sending nothing."""
    from sqlalchemy.exc import OperationalError

    _outbox(sqlite_db, 2)
    journal = SentJournal(tmp_path / "sent.journal")
    real = sender._record
    monkeypatch.setattr(sender, "RECORD_PAUSE_SECONDS", 0.0)

    def broken(*_a: Any, **_k: Any) -> None:
        raise OperationalError("UPDATE", {}, Exception("base de datos caída (prueba)"))

    monkeypatch.setattr(sender, "_record", broken)
    settings = _settings(smtp_sink.url)
    with pytest.raises(OperationalError):
        drain_outbox(settings, sqlite_db, lambda: NOW, journal=journal)
    monkeypatch.setattr(sender, "_record", real)
    later = NOW + dt.timedelta(hours=1)  # the lease ran out
    stats = drain_outbox(settings, sqlite_db, lambda: later, journal=journal)
    assert stats.sent == 2 and len(smtp_sink.snapshot()) == 2
    with sqlite_db.session(readonly=True) as s:
        assert {r.status for r in s.scalars(select(OutboxMessage))} == {"sent"}


@pytest.mark.parametrize("kind", ["sqlite", "pg"])
def test_claims_mark_due_rows_in_due_order_and_skip_rows_another_sender_holds(
    kind: str, request: pytest.FixtureRequest
) -> None:
    db: Database = request.getfixturevalue(f"{kind}_db")
    _outbox(db, 6)
    with db.session() as s:  # row 2 is due later than the others, row 6 not yet
        s.get_one(OutboxMessage, 2).next_attempt_at = NOW + dt.timedelta(seconds=30)
        s.get_one(OutboxMessage, 6).next_attempt_at = NOW + dt.timedelta(hours=1)
    lease = dt.timedelta(minutes=5)
    later = NOW + dt.timedelta(minutes=1)
    if kind == "pg":  # another sender's claim, still open, holds row 1: it is skipped
        with db.session() as other:
            other.execute(
                select(OutboxMessage.id).where(OutboxMessage.id == 1).with_for_update()
            ).all()
            assert sender.claim_due(db, later, 10, lease) == [3, 4, 5, 2]
        assert sender.claim_due(db, later, 10, lease) == [1]
    else:
        assert sender.claim_due(db, later, 2, lease) == [1, 3]
        assert sender.claim_due(db, later, 10, lease) == [4, 5, 2]
    with db.session(readonly=True) as s:
        rows = {r.id: r for r in s.scalars(select(OutboxMessage))}
    assert all(rows[i].status == "sending" for i in range(1, 6))
    assert all(rows[i].next_attempt_at == later + lease for i in range(1, 6))
    assert rows[6].status == "pending" and rows[6].next_attempt_at == NOW + dt.timedelta(hours=1)
    assert sender.claim_due(db, later, 10, lease) == []  # claimed rows wait for their lease
    assert sender.claim_due(db, later + lease, 10, lease) == [1, 2, 3, 4, 5]  # ran out
