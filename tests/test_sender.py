"""The sender against a real SMTP server: accepted once, retried with backoff, never lost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from mailflow.config import Settings
from mailflow.db import Database
from mailflow.models import CaseEvent, DeliveryAttempt, OutboxMessage
from mailflow.sender import drain_outbox, parse_smtp_url
from tests.smtp_sink import SmtpSink

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def _outbox(db: Database, n: int) -> None:
    with db.session() as s:
        for i in range(n):
            raw = (
                f"From: mesadepartes@x.pe\nTo: p{i}@example.org\nSubject: Cargo {i}\n"
                f"Message-ID: <o{i}@x.pe>\n\nRecibido {'ñ' * 5}\n"
            ).encode()
            s.add(
                OutboxMessage(
                    kind="ack",
                    dedupe_key=f"k{i}",
                    message_id=f"<o{i}@x.pe>",
                    from_addr="mesadepartes@x.pe",
                    to_addr=f"p{i}@example.org",
                    subject=f"Cargo {i}",
                    raw=raw,
                    next_attempt_at=NOW,
                )
            )


def _settings(url: str | None, outbox_dir: Path | None = None) -> Settings:
    return Settings.model_validate(
        {
            "smtp": {"url": url, "max_attempts": 3, "retry_base_seconds": 10},
            "outbox_dir": outbox_dir,
        }
    )


def test_sends_each_reply_once_and_records_the_attempt(
    sqlite_db: Database, smtp_sink: SmtpSink
) -> None:
    _outbox(sqlite_db, 3)
    stats = drain_outbox(_settings(smtp_sink.url), sqlite_db, lambda: NOW)
    assert stats.sent == 3
    assert sorted(c.rcpt_tos[0] for c in smtp_sink.snapshot()) == [
        f"p{i}@example.org" for i in range(3)
    ]
    assert drain_outbox(_settings(smtp_sink.url), sqlite_db, lambda: NOW).sent == 0
    with sqlite_db.session(readonly=True) as s:
        assert {r.status for r in s.scalars(select(OutboxMessage))} == {"sent"}
        assert [a.ok for a in s.scalars(select(DeliveryAttempt))] == [True] * 3


def test_server_down_backs_off_then_fails_to_the_exception_queue(
    sqlite_db: Database, smtp_sink: SmtpSink
) -> None:
    _outbox(sqlite_db, 1)
    smtp_sink.refuse = True
    settings = _settings(smtp_sink.url)
    now = NOW
    assert drain_outbox(settings, sqlite_db, lambda: now).retried == 1
    with sqlite_db.session(readonly=True) as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.next_attempt_at == NOW + dt.timedelta(seconds=10)
    assert drain_outbox(settings, sqlite_db, lambda: now).retried == 0  # not due yet
    now = NOW + dt.timedelta(seconds=10)
    drain_outbox(settings, sqlite_db, lambda: now)
    now = NOW + dt.timedelta(seconds=30)  # 10 + 20 (doubled)
    assert drain_outbox(settings, sqlite_db, lambda: now).failed == 1
    with sqlite_db.session(readonly=True) as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert (row.status, row.attempts) == ("failed", 3)
        event = s.scalars(select(CaseEvent)).one()
        assert event.kind == "exception" and "tras 3 intentos" in event.reason
    assert smtp_sink.snapshot() == []


def test_without_smtp_url_replies_are_written_to_the_outbox_folder(
    sqlite_db: Database, tmp_path: Path
) -> None:
    _outbox(sqlite_db, 2)
    stats = drain_outbox(_settings(None, tmp_path / "out"), sqlite_db, lambda: NOW)
    assert stats.sent == 2
    files = sorted((tmp_path / "out").glob("*.eml"))
    assert len(files) == 2 and b"Subject: Cargo 0" in files[0].read_bytes()


def test_smtp_urls() -> None:
    t = parse_smtp_url("smtp+starttls://ana%40x.pe:s3cr%C3%A9t@mail.x.pe")
    assert (t.host, t.port, t.security, t.user, t.password) == (
        "mail.x.pe",
        587,
        "starttls",
        "ana@x.pe",
        "s3crét",
    )
    assert parse_smtp_url("smtps://mail.x.pe").port == 465
    assert parse_smtp_url("smtp://127.0.0.1:2525").security == "plain"
