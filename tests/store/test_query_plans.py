"""The engine's statements stay index look-ups as the database grows (SQLite's own plans).

A statement that scans a growing table, or searches it by an index that does not narrow it
(the inbox's status), makes every message cost more than the one before: the duplicate check
once read every processed inbox row for each new message (issue 18, migration 0008). The test
runs real requests, a repeated Message-ID and a follow-up through the engine and the sweep,
and asks SQLite how it would run every distinct statement it saw.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import event

from mailflow.app import App
from mailflow.runners.inbox import store_raw
from mailflow.runners.service import default_sweep, process_waiting
from mailflow.store.db import Database
from tests.support.cases_support import make_app
from tests.support.mail_requests import request

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
GROWING = (
    "inbox_messages",
    "cases",
    "case_messages",
    "case_events",
    "outbox_messages",
    "timers",
    "documents",
    "case_transitions",
)
FULL_SCAN = re.compile(rf"^SCAN ({'|'.join(GROWING)})\b")
BY_STATUS = "ix_inbox_messages_status_arrived_at"


def _statements(app: App) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def remember(_conn: Any, _cursor: Any, sql: str, params: Any, *_rest: Any) -> None:
        seen.setdefault(sql, params)

    event.listen(app.database.engine, "before_cursor_execute", remember)
    db = app.database
    with db.session() as s:
        for i in range(40):
            store_raw(s, request(i), mailbox="m", source="smtp", now=NOW)
        store_raw(s, request(3) + b"\n", mailbox="m", source="smtp", now=NOW)  # same Message-ID
    process_waiting(app, lambda: NOW, "w1")
    default_sweep(app, NOW + dt.timedelta(days=40), "w1")
    process_waiting(app, lambda: NOW + dt.timedelta(days=40), "w1")
    event.remove(app.database.engine, "before_cursor_execute", remember)
    return seen


def _plan(db: Database, sql: str, params: Any) -> list[str]:
    if isinstance(params, list):  # executemany: one parameter set is enough for a plan
        params = params[0] if params else ()
    with db.engine.connect() as conn:
        return [str(row[3]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]


def test_no_statement_scans_a_growing_table(tmp_path: Any, sqlite_db: Database) -> None:
    app = make_app(tmp_path, sqlite_db)
    seen = _statements(app)
    planned = {
        sql: _plan(sqlite_db, sql, params)
        for sql, params in seen.items()
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH"))
    }
    assert len(planned) > 10  # the run did go through the pipeline
    scans = {
        " ".join(sql.split())[:200]: [line for line in plan if FULL_SCAN.match(line)]
        for sql, plan in planned.items()
    }
    assert {sql: lines for sql, lines in scans.items() if lines} == {}
    by_message_id = [sql for sql in planned if "message_id IN" in sql or "message_id =" in sql]
    assert by_message_id  # the duplicate check ran
    wrong = {
        " ".join(sql.split())[:200]: planned[sql]
        for sql in by_message_id
        if any(BY_STATUS in line for line in planned[sql])
    }
    assert wrong == {}
