"""Faults not covered by test_service: PostgreSQL connections dropped mid-run, a full disk."""

from __future__ import annotations

import errno
import pathlib
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, text

from bench.corpus import message, new_kit, pools
from mailflow.app import App
from mailflow.config import load_settings
from mailflow.ops.keys import keys_demo
from mailflow.runners.inbox import store_raw
from mailflow.runners.service import run_once, utc_now
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent, Document, InboxMessage, OutboxMessage
from tests.support.dovecot import DovecotAccount
from tests.support.mail_requests import request
from tests.support.mailservice import replies_per_request, start_service, write_config
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import GENEROUS_SECONDS


def _with(path: Path, **values: object) -> Path:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(values)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _terminate_backends(db: Database) -> int:
    """pg_terminate_backend on every other connection to this database (the service's)."""
    with db.engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
        conn.commit()
    return int(killed)


N_DROPPED = 480  # enough work that the cuts land inside transactions (16 messages each)


def test_database_connections_dropped_mid_run(
    tmp_path: Path,
    imap_account: DovecotAccount,
    smtp_sink: SmtpSink,
    pg_db: Database,
    pg_url: str,
) -> None:
    raws = [request(i) for i in range(N_DROPPED)]
    imap_account.append(raws)
    request_ids = {f"<req{i}@example.org>" for i in range(N_DROPPED)}
    config = _with(write_config(tmp_path, imap_account.url(), smtp_sink.url), database_url=pg_url)
    log = tmp_path / "service.log"
    proc = start_service(config, once=False, log=log)
    killed = []
    try:
        deadline = time.monotonic() + GENEROUS_SECONDS
        while not smtp_sink.snapshot() and time.monotonic() < deadline:
            time.sleep(0.05)
        # while it works, every connection it holds is cut: at least 4 times, and until one cut
        # landed inside a transaction (transactions are short: parsing happens outside them)
        while len(replies_per_request(smtp_sink)) < N_DROPPED and time.monotonic() < deadline:
            killed.append(_terminate_backends(pg_db))
            if len(killed) >= 4 and "terminating connection" in log.read_text():
                break
            time.sleep(0.7)
        deadline = time.monotonic() + GENEROUS_SECONDS
        while len(replies_per_request(smtp_sink)) < N_DROPPED and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, log.read_text()[-3000:]  # the service never stopped
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(GENEROUS_SECONDS)
    assert sum(killed) >= 4 and "terminating connection" in log.read_text()
    replies = replies_per_request(smtp_sink)
    twice = {k for k, v in replies.items() if v != 1}
    assert not twice, [
        (str(c.message["In-Reply-To"]), str(c.message["Subject"]), str(c.message["Message-ID"]))
        for c in smtp_sink.snapshot()
        if str(c.message["In-Reply-To"]).strip() in twice
    ]
    assert set(replies) == request_ids
    with pg_db.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage)).all()
        assert len(rows) == N_DROPPED and {r.message_id for r in rows} == request_ids
        for row in rows:  # a cut connection may cost a try; never the message
            exceptions = s.scalar(
                select(func.count(CaseEvent.id)).where(
                    CaseEvent.inbox_message_id == row.id, CaseEvent.kind == "exception"
                )
            )
            assert row.status in ("done", "set_aside"), (row.id, row.status)
            assert (row.case_id is not None) != (exceptions == 1), row.id
        assert Counter(s.scalars(select(OutboxMessage.status)).all()) == {"sent": N_DROPPED}
    assert imap_account.count("INBOX") == 0


def test_disk_full_on_the_documents_directory(
    tmp_path: Path, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = new_kit(tmp_path / "pki")
    specs = pools()
    cargos = [message("cargo", i, kit, specs) for i in range(2)]
    config = write_config(
        tmp_path, None, smtp_sink.url, signatures={"trust_roots": [str(kit.ca_pem)]}
    )
    settings = load_settings(config, env={})
    keys_demo(settings)
    app = App(settings)
    app.database.migrate()
    documents = settings.data_dir / "documents"
    failures = {"left": 4}  # disk full for the first four document writes, then space again
    real_write = pathlib.Path.write_bytes

    def write_bytes(self: pathlib.Path, data: bytes) -> int:
        if self.is_relative_to(documents) and failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    with app.database.session() as session:
        for raw in [*cargos, request(0)]:
            assert store_raw(session, raw, mailbox="mesadepartes", source="smtp", now=utc_now())
    stats = run_once(app, sweep=None)
    assert stats.errors == [] and stats.set_aside == 1  # processed counts every try

    with app.database.session(readonly=True) as s:
        first, second, plain = s.scalars(select(InboxMessage).order_by(InboxMessage.id)).all()
        # Full for three tries: set aside for staff with the reason, nothing half-done.
        assert (first.status, first.attempts, first.case_id) == ("set_aside", 3, None)
        reason = s.scalar(
            select(CaseEvent.reason).where(
                CaseEvent.inbox_message_id == first.id, CaseEvent.kind == "exception"
            )
        )
        assert reason is not None and "No space left on device" in reason
        assert "tras 3 intentos" in reason
        # Full once, then space again: retried, one case, one cargo, one reply.
        assert (second.status, second.disposition, second.attempts) == ("done", "accept", 1)
        docs = s.scalars(select(Document)).all()
        assert [(d.case_id, d.kind) for d in docs] == [(second.case_id, "cargo")]
        assert (settings.data_dir / docs[0].path).read_bytes()[:5] == b"%PDF-"
        assert plain.status == "done" and plain.case_id is not None
        outbox = s.scalars(select(OutboxMessage)).all()
        assert sorted(o.case_id or 0 for o in outbox) == sorted(
            [second.case_id or 0, plain.case_id]
        )
    assert not list(documents.rglob("*.tmp"))  # no half-written files left behind
    replies = replies_per_request(smtp_sink)
    assert sorted(replies.values()) == [1, 1] and len(smtp_sink.snapshot()) == 2
    app.database.dispose()
