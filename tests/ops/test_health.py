"""`mailflow health`: backlogs and stuck or failed mail are reported."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mailflow.documents.pki import create_demo_pki
from mailflow.ops.health import health
from mailflow.store.db import Database
from mailflow.store.models import OutboxMessage
from tests.support.cases_support import MONDAY, mail, make_app, store


def test_healthy_then_stuck_then_failed(tmp_path: Path, sqlite_db: Database) -> None:
    create_demo_pki(tmp_path / "keys")  # data_dir/keys: documents can be signed
    app = make_app(tmp_path, sqlite_db)
    report = health(app, MONDAY)
    assert report["ok"] and report["migrated"] and report["problems"] == [], report["problems"]
    with sqlite_db.session() as s:
        store(s, mail("Actualización de datos", "hola"))
    later = MONDAY + dt.timedelta(minutes=30)
    report = health(app, later)
    assert not report["ok"]
    assert report["inbox"] == {"processing": 1}
    assert "sin procesar" in report["problems"][0]
    with sqlite_db.session() as s:
        s.add(
            OutboxMessage(
                kind="acuse", dedupe_key="k", message_id="m@x", from_addr="a@x", to_addr="b@x",
                subject="s", raw=b"x", status="failed", created_at=MONDAY, next_attempt_at=MONDAY,
            )
        )  # fmt: skip
    report = health(app, later)
    assert report["outbox"] == {"failed": 1}
    assert any("no pudieron entregarse" in p for p in report["problems"])
