"""The sender against a real SMTP server: accepted once, retried with backoff, never lost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from mailflow.config import Settings
from mailflow.runners.sender import drain_outbox
from mailflow.runners.transport import parse_smtp_url
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent, DeliveryAttempt, OutboxMessage
from tests.support.smtp_sink import SmtpSink

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
                    created_at=NOW,
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


def test_permanent_refusal_backs_off_then_fails_to_the_exception_queue(
    sqlite_db: Database, smtp_sink: SmtpSink
) -> None:
    _outbox(sqlite_db, 1)
    smtp_sink.refuse = True
    smtp_sink.refusal = "554 5.7.1 Rechazado (prueba)"
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


def test_a_days_long_outage_keeps_retrying_then_delivers(
    sqlite_db: Database, smtp_sink: SmtpSink
) -> None:
    """Connection-level failures are temporary: hourly tries for days, never given up early."""
    _outbox(sqlite_db, 2)
    smtp_sink.refuse = True  # 451 for a while, then nobody listening at all
    settings = _settings(smtp_sink.url)  # max_attempts 3: only for permanent refusals
    down = Settings.model_validate({"smtp": {"url": "smtp://127.0.0.1:9", "max_attempts": 3}})
    now = NOW
    tries = 0
    while now < NOW + dt.timedelta(days=3):
        target = settings if now < NOW + dt.timedelta(hours=6) else down
        stats = drain_outbox(target, sqlite_db, lambda at=now: at)
        assert stats.failed == 0, now
        tries += stats.retried
        now += dt.timedelta(minutes=30)
    with sqlite_db.session(readonly=True) as s:
        rows = s.scalars(select(OutboxMessage)).all()
        assert {r.status for r in rows} == {"pending"}
        gaps = [r.next_attempt_at - now for r in rows]
    assert all(gap <= dt.timedelta(hours=1) for gap in gaps)  # back-off capped at one hour
    assert tries >= 2 * 60  # about one try an hour each, for three days
    smtp_sink.refuse = False
    now += dt.timedelta(hours=1)
    assert drain_outbox(settings, sqlite_db, lambda: now).sent == 2
    assert len(smtp_sink.snapshot()) == 2


def test_temporary_failures_give_up_after_retry_for_hours(sqlite_db: Database) -> None:
    _outbox(sqlite_db, 1)
    settings = Settings.model_validate(
        {"smtp": {"url": "smtp://127.0.0.1:9", "retry_for_hours": 48, "retry_base_seconds": 60}}
    )
    now = NOW
    failed = 0
    while now < NOW + dt.timedelta(days=3) and not failed:
        failed = drain_outbox(settings, sqlite_db, lambda at=now: at).failed
        now += dt.timedelta(hours=1)
    assert failed == 1 and now >= NOW + dt.timedelta(hours=48)
    with sqlite_db.session(readonly=True) as s:
        event = s.scalars(select(CaseEvent)).one()
        assert "mailflow outbox retry" in event.reason


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
