"""The desk links a message that names a case from another address (a lawyer, an NGO, a
relative) to that case: it joins it, counts from its own receipt, and nothing is sent."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import func, select
from starlette.testclient import TestClient

from mailflow.app import App
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseMessage, InboxMessage, OutboxMessage
from tests.support.cases_support import DATOS, mail, store
from tests.support.web_seed import PASSWORD, build, seed_users, settings_for

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def _token(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def _process(app: App, db: Database, raw: bytes) -> InboxMessage:
    with db.session() as s:
        row = store(s, raw, NOW)
        process_inbox_message(app, s, row, NOW)
        s.flush()
        s.expunge(row)
        return row


def test_staff_link_a_third_partys_message_to_the_case_it_names(
    sqlite_db: Database, tmp_path: Path
) -> None:
    seed_users(sqlite_db)
    web = build(settings_for(tmp_path), sqlite_db, [NOW + dt.timedelta(hours=1)])
    app: App = web.state.mailflow.app  # type: ignore[attr-defined]
    app.__dict__["database"] = sqlite_db
    first = _process(app, sqlite_db, mail("Actualización de datos", DATOS))
    with sqlite_db.session(readonly=True) as s:
        number = s.get(Case, first.case_id).number  # type: ignore[union-attr]
    lawyer = _process(
        app,
        sqlite_db,
        mail(f"Sobre el expediente {number}", "Soy su abogada.", sender="abogada@estudio.pe"),
    )
    assert (lawyer.disposition, lawyer.case_id) == ("review", None)
    with sqlite_db.session(readonly=True) as s:
        sent_before = s.scalar(select(func.count(OutboxMessage.id)))
    client = TestClient(web, follow_redirects=False)  # type: ignore[arg-type]
    data = {"username": "ana", "password": PASSWORD, "csrf_token": _token(client, "/login")}
    assert client.post("/login", data=data).status_code == 303
    page = f"/bandeja/mensajes/{lawyer.id}"
    assert "Vincular a un expediente" in client.get(page).text
    token = _token(client, page)
    wrong = client.post(f"{page}/vincular", data={"csrf_token": token, "expediente": "EXP-1"})
    assert wrong.status_code == 303
    with sqlite_db.session(readonly=True) as s:
        assert s.get(InboxMessage, lawyer.id).case_id is None  # type: ignore[union-attr]
    linked = client.post(
        f"{page}/vincular", data={"csrf_token": _token(client, page), "expediente": number.lower()}
    )
    assert linked.status_code == 303 and linked.headers["location"] == "/bandeja"
    with sqlite_db.session(readonly=True) as s:
        row = s.get(InboxMessage, lawyer.id)
        assert row is not None and row.case_id == first.case_id
        assert s.scalar(
            select(func.count(CaseMessage.id)).where(CaseMessage.inbox_message_id == lawyer.id)
        )
        assert s.scalar(select(func.count(OutboxMessage.id))) == sent_before  # nothing sent
