"""Several `mailflow run` processes sharing one PostgreSQL inbox: each message handled once."""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import func, select, text, update

from mailflow.clock.deadlines import SUBSANACION
from mailflow.runners.inbox import store_raw
from mailflow.runners.sweep import SWEEP_LOCK_KEY
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, CaseMessage, InboxMessage, OutboxMessage, Timer
from tests.support.mail_requests import auto_reply, request
from tests.support.mailservice import replies_per_request, start_service, write_config
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import GENEROUS_SECONDS, PROCESS_EXIT_SECONDS, wait_for

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def _config(tmp: Path, url: str, smtp: str, **sections: object) -> Path:
    path = write_config(tmp, None, smtp, **sections)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["database_url"] = url
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _store(db: Database, n_requests: int, n_auto: int) -> set[str]:
    """Requests and auto-replies straight into the inbox; the request Message-IDs."""
    raws = [request(i) for i in range(n_requests)] + [auto_reply(i) for i in range(n_auto)]
    with db.session() as session:
        for raw in raws:
            assert store_raw(session, raw, mailbox="mesadepartes", source="smtp", now=NOW)
    return {f"<req{i}@example.org>" for i in range(n_requests)}


def _assert_each_once(db: Database, sink: SmtpSink, request_ids: set[str], total: int) -> None:
    replies = replies_per_request(sink)
    assert {k: v for k, v in replies.items() if v != 1} == {}
    assert set(replies) == request_ids  # one first reply per request, none to automatic mail
    with db.session(readonly=True) as s:
        rows = s.scalars(select(InboxMessage)).all()
        assert len(rows) == total
        assert Counter(r.status for r in rows) == {"done": total}
        for row in rows:
            cases = s.scalar(
                select(func.count(CaseMessage.id)).where(
                    CaseMessage.inbox_message_id == row.id, CaseMessage.direction == "in"
                )
            )
            exceptions = s.scalar(
                select(func.count(CaseEvent.id)).where(
                    CaseEvent.inbox_message_id == row.id, CaseEvent.kind == "exception"
                )
            )
            if row.message_id in request_ids:
                assert (cases, exceptions) in ((1, 0), (0, 1)), (row.id, cases, exceptions)
            else:
                assert (row.disposition, cases) == ("ignore", 0)
        linked = {r.case_id for r in rows if r.case_id is not None}
        assert s.scalar(select(func.count(Case.id))) == len(linked)  # no stray cases
        outbox = s.scalars(select(OutboxMessage.status)).all()
        assert Counter(outbox) == {"sent": len(request_ids)}


def _processed(log: str) -> list[int]:
    return [int(n) for n in re.findall(r"procesados=(\d+)", log)]


def test_two_run_once_processes_share_the_inbox(
    tmp_path: Path, pg_db: Database, pg_url: str, smtp_sink: SmtpSink
) -> None:
    request_ids = _store(pg_db, 360, 40)
    config = _config(tmp_path, pg_url, smtp_sink.url)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_service(config, once=True, log=log) for log in logs]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(PROCESS_EXIT_SECONDS) == 0, log.read_text()[-3000:]
    counts = [_processed(log.read_text())[-1] for log in logs]
    assert sum(counts) == 400 and min(counts) > 0, counts  # both worked, none twice
    _assert_each_once(pg_db, smtp_sink, request_ids, 400)


def _leaders(db: Database) -> int:
    """Backends holding the sweep's advisory lock on this database."""
    key = SWEEP_LOCK_KEY
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = "
                    "current_database()) AND classid = :hi AND objid = :lo AND objsubid = 1"
                ),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
            ).scalar_one()
        )


def _recorded(db: Database) -> int:
    """Replies the database records as accepted by the server."""
    with db.session(readonly=True) as s:
        return int(
            s.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "sent"))
            or 0
        )


def test_two_services_elect_one_sweep_leader_and_fire_each_timer_once(
    tmp_path: Path, pg_db: Database, pg_url: str, smtp_sink: SmtpSink
) -> None:
    request_ids = _store(pg_db, 80, 0)
    config = _config(tmp_path, pg_url, smtp_sink.url, sla={"sweep_seconds": 0.5})
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = [start_service(config, once=False, log=log) for log in logs]
        assert wait_for(lambda: len(smtp_sink.snapshot()) >= 80), logs[0].read_text()[-3000:]
        # the sender records a batch's acceptances after the batch (and the observation
        # windows start from them): wait until every reply is recorded, not only received
        assert wait_for(lambda: _recorded(pg_db) >= 80), logs[0].read_text()[-3000:]
        assert wait_for(lambda: _leaders(pg_db) == 1)
        with pg_db.session() as s:  # the observations' subsanación windows end now
            result = s.execute(
                update(Timer)
                .where(Timer.kind == SUBSANACION, Timer.fired_at.is_(None))
                .values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
            )
            observed = int(getattr(result, "rowcount", 0))
        assert observed > 0

        def all_fired() -> bool:
            with pg_db.session(readonly=True) as s:
                pending = s.scalar(
                    select(func.count(Timer.id)).where(
                        Timer.kind == SUBSANACION, Timer.fired_at.is_(None)
                    )
                )
            return pending == 0 and len(smtp_sink.snapshot()) >= 80 + observed

        assert wait_for(all_fired), logs[1].read_text()[-3000:]
        assert _leaders(pg_db) == 1
        time.sleep(1.5)  # further sweeps by either process must not fire anything again
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(GENEROUS_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert [p.returncode for p in procs] == [0, 0]
    with pg_db.session(readonly=True) as s:
        firers = s.scalars(select(Timer.fired_by).where(Timer.kind == SUBSANACION)).all()
        assert len(firers) == observed and len(set(firers)) == 1  # one leader fired them all
    counts = Counter(str(c.message["In-Reply-To"]).strip() for c in smtp_sink.snapshot())
    assert set(counts) == request_ids
    assert sorted(Counter(counts.values()).items()) == [(1, 80 - observed), (2, observed)]
