"""The desk never parses mail on the web server's event loop (issue 14)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailflow.store.db import Database
from mailflow.store.models import InboxMessage
from mailflow.web import casefile
from tests.support.mail_requests import request
from tests.support.web_seed import NOW, PASSWORD, build, seed_users, settings_for, store


def test_case_page_parses_its_mail_in_a_worker_thread(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_users(sqlite_db)
    web = build(settings_for(tmp_path), sqlite_db, [NOW])
    app = web.state.mailflow.app  # type: ignore[attr-defined]
    message_id = store(sqlite_db, app, request(7), 7)
    with sqlite_db.session(readonly=True) as s:
        row = s.get(InboxMessage, message_id)
        assert row is not None and row.case_id is not None
        case_id = row.case_id
    on_loop: list[bool] = []
    real = casefile.parse_message

    def spy(raw: bytes, **kw: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # no loop in this thread: a worker thread
            on_loop.append(False)
        return real(raw, **kw)

    monkeypatch.setattr(casefile, "parse_message", spy)
    client = TestClient(web, follow_redirects=False)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    data = {"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/login", data=data).status_code == 303
    assert client.get(f"/expedientes/{case_id}").status_code == 200
    assert on_loop and not any(on_loop)
