"""Exception queue actions and case pages of the staff desk, through the HTTP routes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailflow.app import App
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, InboxMessage
from tests.support.web_seed import (
    NOW,
    PASSWORD,
    SPAM,
    UNCLASSIFIED,
    build,
    seed_users,
    settings_for,
    store,
)


@pytest.fixture
def env(sqlite_db: Database, tmp_path: Path) -> tuple[TestClient, App, Database]:
    seed_users(sqlite_db)
    settings = settings_for(tmp_path)
    web = build(settings, sqlite_db, [NOW])
    app: App = web.state.mailflow.app  # type: ignore[attr-defined]
    client = TestClient(web, follow_redirects=False)  # type: ignore[arg-type]
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    data = {"username": "ana", "password": PASSWORD, "csrf_token": csrf.group(1)}
    assert client.post("/login", data=data).status_code == 303
    return client, app, sqlite_db


def csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_queue_shows_unclassified_message_with_reason(
    env: tuple[TestClient, App, Database],
) -> None:
    client, app, db = env
    store(db, app, UNCLASSIFIED, 1)
    page = client.get("/bandeja")
    assert page.status_code == 200
    assert "consulta urgente" in page.text and "Motivo:" in page.text


def test_ignore_takes_message_out_and_audits_user(env: tuple[TestClient, App, Database]) -> None:
    client, app, db = env
    mid = store(db, app, SPAM, 2, process=False)
    with db.session() as session:
        session.get(InboxMessage, mid).status = "set_aside"  # type: ignore[union-attr]
    token = csrf(client, "/bandeja")
    client.post(f"/bandeja/mensajes/{mid}", data={"action": "ignorar", "csrf_token": token})
    with db.session() as session:
        row = session.get(InboxMessage, mid)
        assert row is not None and row.status == "done" and row.disposition == "ignore"
        actors = session.scalars(
            select(CaseEvent.actor).where(CaseEvent.inbox_message_id == mid)
        ).all()
    assert "usuario:ana" in actors
    assert "oferta imperdible" not in client.get("/bandeja").text


def test_classify_opens_case_and_case_moves_through_states(
    env: tuple[TestClient, App, Database],
) -> None:
    client, app, db = env
    mid = store(db, app, UNCLASSIFIED, 3)
    token = csrf(client, "/bandeja")
    data = {"action": "clasificar", "tramite": "actualizacion_datos", "csrf_token": token}
    assert client.post("/bandeja/lote", data={**data, "ids": str(mid)}).status_code == 303
    with db.session() as session:
        row = session.get(InboxMessage, mid)
        assert row is not None and row.case_id is not None
        case = session.get(Case, row.case_id)
        assert case is not None and case.tramite == "actualizacion_datos"
        case_id, state = case.id, case.state
    page = client.get(f"/expedientes/{case_id}")
    assert page.status_code == 200 and "Maria Perez" in page.text
    allowed = app.machines["general"].allowed_events(state, "staff")
    for event in [t.event for t in allowed][:1] or []:
        client.post(
            f"/expedientes/{case_id}/eventos",
            data={"event": event, "reason": "revisado", "csrf_token": token},
        )
    # an event the machine does not allow in this state is refused
    client.post(
        f"/expedientes/{case_id}/eventos",
        data={"event": "archivar", "reason": "", "csrf_token": token},
    )
    with db.session() as session:
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)).all()
        case = session.get(Case, case_id)
    assert case is not None and case.state != "archivado"
    assert any(e.actor == "usuario:ana" for e in events)
    assert "Ana Quispe" in client.get(f"/expedientes/{case_id}").text


def test_case_list_filters_by_text(env: tuple[TestClient, App, Database]) -> None:
    client, app, db = env
    mid = store(db, app, UNCLASSIFIED, 4)
    token = csrf(client, "/bandeja")
    client.post(
        f"/bandeja/mensajes/{mid}",
        data={"action": "clasificar", "tramite": "actualizacion_datos", "csrf_token": token},
    )
    assert "Maria Perez" in client.get("/expedientes?q=Perez").text
    assert "Sin resultados" in client.get("/expedientes?q=Nadie").text
