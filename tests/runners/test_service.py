"""The whole service against a real Dovecot and a real SMTP server, including crashes."""

from __future__ import annotations

import random
import signal
import time
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.runners.child import Child
from mailflow.runners.service import run_once
from mailflow.store.models import CaseEvent, InboxMessage, OutboxMessage
from tests.support.dovecot import Dovecot, DovecotAccount
from tests.support.mail_requests import auto_reply, bounce, request
from tests.support.mailservice import replies_per_request, start_service, write_config
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import GENEROUS_SECONDS, PROCESS_EXIT_SECONDS, wait_for


def _mixed(n_requests: int, n_auto: int) -> tuple[list[bytes], set[str]]:
    raws = [request(i) for i in range(n_requests)]
    raws += [auto_reply(i) for i in range(n_auto)] + [bounce(i) for i in range(n_auto)]
    random.Random(7).shuffle(raws)
    ids = {str(message_from_bytes(r)["Message-ID"]) for r in raws if b"persona" in r}
    return raws, ids


def _app(config: Path) -> App:
    app = App(load_settings(config, env={}))
    app.database.migrate()
    return app


def _assert_exactly_once(app: App, sink: SmtpSink, request_ids: set[str], total: int) -> None:
    replies = replies_per_request(sink)
    assert {k: v for k, v in replies.items() if v != 1} == {}
    assert set(replies) == request_ids  # every request answered; automatic mail got nothing
    with app.database.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage).where(InboxMessage.status != "duplicate")).all()
        assert len(rows) == total
        assert len({r.message_id for r in rows}) == total
        for row in rows:
            assert row.status in ("done", "set_aside"), (row.id, row.status, row.last_error)
            if row.message_id in request_ids:
                exception = s.scalar(
                    select(func.count(CaseEvent.id)).where(
                        CaseEvent.inbox_message_id == row.id, CaseEvent.kind == "exception"
                    )
                )
                assert (row.case_id is not None) != (exception == 1), row.id
            else:
                assert row.disposition == "ignore" and row.case_id is None
        pending = s.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.status != "sent")
        )
        assert pending == 0


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "companions"])
def test_run_once_answers_each_request_once(
    tmp_path: Path, imap_account: DovecotAccount, smtp_sink: SmtpSink, processes: bool
) -> None:
    """Ingestion and the sender as threads, or as forked companions (what `run --once` uses:
    their counts come back over the pipe)."""
    raws, request_ids = _mixed(30, 3)
    imap_account.append(raws)
    config = write_config(tmp_path, imap_account.url(), smtp_sink.url)
    app = _app(config)
    stats = run_once(app, processes=processes)
    assert stats.ingested == len(raws) and stats.errors == []
    assert stats.sent == len(request_ids) == 30
    _assert_exactly_once(app, smtp_sink, request_ids, len(raws))
    assert imap_account.count("INBOX") == 0
    assert imap_account.count("Procesados") == len(raws)
    first = smtp_sink.snapshot()[0].message
    assert first["X-Mailflow-Case"] and first["Auto-Submitted"] == "auto-replied"

    again = run_once(app, processes=processes)
    assert (again.ingested, again.processed, again.sent) == (0, 0, 0)
    assert len(smtp_sink.snapshot()) == 30


def test_run_once_without_fork_falls_back_to_threads(
    tmp_path: Path,
    imap_account: DovecotAccount,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of processes or memory, the companions cannot be forked: the run still answers
    everyone, with threads, and leaves no write ordering behind."""
    raws, request_ids = _mixed(6, 1)
    imap_account.append(raws)
    app = _app(write_config(tmp_path, imap_account.url(), smtp_sink.url))

    def no_fork(_self: Child) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(Child, "start", no_fork)
    stats = run_once(app, processes=True)
    assert stats.ingested == len(raws) and stats.errors == []
    assert stats.sent == len(request_ids)
    _assert_exactly_once(app, smtp_sink, request_ids, len(raws))
    assert app.database.turnstile is None


def test_sigkill_at_random_points_loses_and_repeats_nothing(
    tmp_path: Path, imap_account: DovecotAccount, smtp_sink: SmtpSink
) -> None:
    raws, request_ids = _mixed(400, 20)
    imap_account.append(raws)
    config = write_config(tmp_path, imap_account.url(), smtp_sink.url)
    app = _app(config)
    log = tmp_path / "service.log"
    rng = random.Random(2024)
    interrupted = 0  # kills that landed while requests were still unanswered
    for _ in range(5):
        proc = start_service(config, once=False, log=log)
        time.sleep(rng.uniform(0.6, 1.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait(GENEROUS_SECONDS)
        if len(smtp_sink.snapshot()) < len(request_ids):
            interrupted += 1
    assert interrupted >= 3, "the kills must interrupt real work; use more messages"
    final = start_service(config, once=True, log=log)
    assert final.wait(PROCESS_EXIT_SECONDS) == 0, log.read_text()[-3000:]
    _assert_exactly_once(app, smtp_sink, request_ids, len(raws))
    assert imap_account.count("INBOX") == 0


def test_smtp_down_and_imap_restart_mid_run(
    tmp_path: Path, dovecot: Dovecot, imap_account: DovecotAccount, smtp_sink: SmtpSink
) -> None:
    first, ids1 = _mixed(40, 3)
    imap_account.append(first)
    config = write_config(tmp_path, imap_account.url(), smtp_sink.url)
    app = _app(config)
    smtp_sink.refuse = True
    log = tmp_path / "service.log"
    proc = start_service(config, once=False, log=log)
    try:

        def outbox_full() -> bool:
            with app.database.session(readonly=True) as s:
                n = s.scalar(select(func.count(OutboxMessage.id)))
            return n == 40

        assert wait_for(outbox_full), log.read_text()[-3000:]
        # the sender has tried (and been refused) at least once; nothing got through
        assert wait_for(lambda: smtp_sink.refused > 0), log.read_text()[-3000:]
        assert smtp_sink.snapshot() == []
        dovecot.stop()
        time.sleep(0.5)
        dovecot.start()
        second = [request(1000 + i) for i in range(10)]
        imap_account.append(second)
        ids2 = {str(message_from_bytes(r)["Message-ID"]) for r in second}
        smtp_sink.refuse = False
        assert wait_for(lambda: len(smtp_sink.snapshot()) >= 50), log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(GENEROUS_SECONDS) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    final = start_service(config, once=True, log=log)
    assert final.wait(PROCESS_EXIT_SECONDS) == 0, log.read_text()[-3000:]
    _assert_exactly_once(app, smtp_sink, ids1 | ids2, len(first) + 10)
    with app.database.session(readonly=True) as s:
        retried = s.scalar(select(func.max(OutboxMessage.attempts)))
    assert retried is not None and retried > 1
