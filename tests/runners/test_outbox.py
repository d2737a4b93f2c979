"""Undelivered replies: listed for staff and operators, sent again with «reenviar» or the CLI."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.errors import MailflowError
from mailflow.runners.outbox import resend, undelivered
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent, OutboxMessage
from tests.support.mailservice import write_config
from tests.support.web_seed import NOW, PASSWORD, build, seed_users, settings_for
from tests.test_cli import mailflow


def _add(db: Database, key: str, status: str, attempts: int) -> int:
    with db.session() as s:
        row = OutboxMessage(
            kind="acuse",
            dedupe_key=key,
            message_id=f"{key}@x.pe",
            from_addr="mesadepartes@x.pe",
            to_addr=f"{key}@example.org",
            subject=f"Cargo {key}",
            raw=b"Subject: x\r\n\r\nhola\r\n",
            status=status,
            attempts=attempts,
            last_error="ConnectionRefusedError: [Errno 111] Connection refused",
            next_attempt_at=NOW,
            created_at=NOW,
        )
        s.add(row)
        s.flush()
        return row.id


def test_resend_makes_failed_replies_due_and_audits_who_asked(sqlite_db: Database) -> None:
    failed = _add(sqlite_db, "a", "failed", 12)
    sent = _add(sqlite_db, "b", "sent", 1)
    _add(sqlite_db, "c", "pending", 0)  # never tried: not "undelivered" yet
    later = NOW + dt.timedelta(days=1)
    with sqlite_db.session() as s:
        assert [r.id for r in undelivered(s)] == [failed]
        with pytest.raises(MailflowError, match="ya fue entregada"):
            resend(s, [sent], actor="ana", now=later)
    with sqlite_db.session() as s:
        assert resend(s, None, actor="ana", now=later) == [failed]
    with sqlite_db.session(readonly=True) as s:
        row = s.get(OutboxMessage, failed)
        assert row is not None and (row.status, row.attempts) == ("pending", 0)
        assert row.next_attempt_at == later and row.message_id == "a@x.pe"  # same Message-ID
        event = s.scalars(select(CaseEvent)).one()
        assert event.actor == "ana" and event.data["action"] == "reenviar"


def test_cli_lists_and_retries_undelivered_replies(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    app = App(load_settings(config, env={}))
    app.database.migrate()
    failed = _add(app.database, "a", "failed", 12)
    app.database.dispose()
    listed = mailflow("--config", str(config), "outbox", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^\s*{failed} failed .*a@example.org", listed.stdout, re.M)
    assert mailflow("--config", str(config), "outbox", "retry").returncode != 0  # nothing named
    retried = mailflow("--config", str(config), "outbox", "retry", "--all")
    assert retried.returncode == 0, retried.stderr
    assert f": {failed}" in retried.stdout
    with app.database.session(readonly=True) as s:
        row = s.get(OutboxMessage, failed)
        assert row is not None and row.status == "pending"


def test_staff_queue_shows_undelivered_replies_with_reenviar(
    sqlite_db: Database, tmp_path: Path
) -> None:
    seed_users(sqlite_db)
    web = build(settings_for(tmp_path), sqlite_db, [NOW])
    client = TestClient(web, follow_redirects=False)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    data = {"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/login", data=data).status_code == 303
    failed = _add(sqlite_db, "a", "failed", 12)
    page = client.get("/bandeja")
    assert "Respuestas no entregadas" in page.text and "Connection refused" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    done = client.post(f"/bandeja/envios/{failed}/reenviar", data={"csrf_token": token.group(1)})
    assert done.status_code == 303
    with sqlite_db.session(readonly=True) as s:
        row = s.get(OutboxMessage, failed)
        assert row is not None and row.status == "pending"
        assert s.scalars(select(CaseEvent.actor)).one() != "sistema"
