"""Revocation of an automatically issued oficio from the case page: manager only, reason
required, audited, shown on the verification page, Migraciones notified; cargos never."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailflow.app import App
from mailflow.config import MigracionesSettings
from mailflow.documents.revocation import RevocationError, revoke
from mailflow.ops.keys import keys_demo
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import Applicant, Case, CaseEvent, Document, OutboxMessage
from tests.support.cases_support import mail, parse_out, store
from tests.support.web_seed import PASSWORD, build, seed_users, settings_for

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
MIGRACIONES = "oficios@migraciones.example.org"
PRORROGA = (
    "Nombres y apellidos: Ana Gómez Ruiz\nSexo: Femenino\nNacionalidad: venezolana\n"
    "Documento de identidad: Pasaporte 40000001\nCarné de extranjería: 000123456\n"
    "Fecha de nacimiento: 12/03/1990\nTeléfono: 987654321\n"
)


def _token(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def _login(client: TestClient, username: str) -> str:
    data = {"username": username, "password": PASSWORD, "csrf_token": _token(client, "/login")}
    assert client.post("/login", data=data).status_code == 303
    return _token(client, "/bandeja")


@pytest.fixture
def issued(sqlite_db: Database, tmp_path: Path) -> tuple[object, App, int]:
    """A prórroga issued automatically: its case id; web app and App share the database."""
    seed_users(sqlite_db)
    settings = settings_for(tmp_path).model_copy(
        update={"migraciones": MigracionesSettings(address=MIGRACIONES)}
    )
    web = build(settings, sqlite_db, [NOW + dt.timedelta(days=2)])
    app: App = web.state.mailflow.app  # type: ignore[attr-defined]
    app.__dict__["database"] = sqlite_db
    keys_demo(settings)
    with sqlite_db.session() as s:
        s.add(Applicant(full_name="Ana Gómez Ruiz", carne_extranjeria="000123456",
                        document_number="40000001", email="ana@example.org",
                        status="Refugiada reconocida"))  # fmt: skip
        raw = mail("Prórroga de residencia", PRORROGA, sender="ana@example.org", name="Ana")
        row = store(s, raw, NOW)
        process_inbox_message(app, s, row, NOW)
        case_id = row.case_id
    assert case_id is not None
    return web, app, case_id


def test_automatic_prorroga_is_issued_and_queued_for_migraciones(
    issued: tuple[object, App, int], sqlite_db: Database
) -> None:
    _, _, case_id = issued
    with sqlite_db.session(readonly=True) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.state == "oficio_emitido"
        out = s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case_id)).all()
        assert {(o.kind, o.to_addr) for o in out} >= {("oficio_migraciones", MIGRACIONES)}
        policy = s.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "policy")
        ).one()
        assert policy.data["automatic"] is True


def test_manager_revokes_with_reason_and_verification_page_says_so(
    issued: tuple[object, App, int], sqlite_db: Database
) -> None:
    web, _, case_id = issued
    with sqlite_db.session(readonly=True) as s:
        doc = s.scalars(select(Document).where(Document.case_id == case_id)).one()
    client = TestClient(web, follow_redirects=False)  # type: ignore[arg-type]
    url = f"/expedientes/{case_id}/documentos/{doc.id}/revocar"

    token = _login(client, "ana")  # staff: refused
    client.post(url, data={"reason": "Emitido con datos erróneos", "csrf_token": token})
    with sqlite_db.session(readonly=True) as s:
        assert s.get(Document, doc.id).revoked_at is None  # type: ignore[union-attr]

    client.cookies.clear()
    token = _login(client, "jefa")
    assert "Revocar y avisar a Migraciones" in client.get(f"/expedientes/{case_id}").text
    client.post(url, data={"reason": "corto", "csrf_token": token})  # reason too short
    with sqlite_db.session(readonly=True) as s:
        assert s.get(Document, doc.id).revoked_at is None  # type: ignore[union-attr]
    client.post(url, data={"reason": "Emitido con datos erróneos", "csrf_token": token})

    with sqlite_db.session(readonly=True) as s:
        row = s.get(Document, doc.id)
        assert row is not None and row.revoked_at is not None
        assert row.revoked_reason == "Emitido con datos erróneos"
        audit = s.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "revocation")
        ).one()
        assert audit.actor == "usuario:jefa" and audit.data["document_id"] == doc.id
        notice = s.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "revocacion_migraciones")
        ).one()
        assert notice.to_addr == MIGRACIONES and doc.number in notice.subject
        body = parse_out(notice).get_body(("plain",))
        assert body is not None and "Motivo: Emitido con datos erróneos" in body.get_content()
    page = client.get(f"/verificar/{doc.verification_code}")
    assert "Documento revocado" in page.text and "Emitido con datos erróneos" in page.text
    assert "Ana Gómez Ruiz" not in page.text  # no personal data added


def test_cargo_and_double_revocation_are_refused(
    issued: tuple[object, App, int], sqlite_db: Database
) -> None:
    _, app, case_id = issued
    with sqlite_db.session() as s:
        doc = s.scalars(select(Document).where(Document.case_id == case_id)).one()
        cargo = Document(case_id=case_id, kind="cargo", number="C-1", verification_code="CARGO1",
                         sha256="0" * 64, path="x.pdf", size=1, issued_at=NOW, event_key="c")  # fmt: skip
        s.add(cargo)
        s.flush()
        common = {"actor": "usuario:jefa", "role": "manager", "now": NOW}
        with pytest.raises(RevocationError, match="prueba que la presentación ocurrió"):
            revoke(s, app, cargo.id, reason="no corresponde a nada", **common)
        with pytest.raises(RevocationError, match="solo un"):
            revoke(s, app, doc.id, reason="motivo suficiente", **{**common, "role": "staff"})
        revoke(s, app, doc.id, reason="motivo suficiente", **common)
        with pytest.raises(RevocationError, match="ya fue revocado"):
            revoke(s, app, doc.id, reason="motivo suficiente", **common)


def test_oficio_awaiting_approval_waits_in_the_staff_queue_with_its_reasons(
    sqlite_db: Database, tmp_path: Path
) -> None:
    seed_users(sqlite_db)
    settings = settings_for(tmp_path).model_copy(
        update={"migraciones": MigracionesSettings(address=MIGRACIONES)}
    )
    web = build(settings, sqlite_db, [NOW + dt.timedelta(hours=1)])
    app: App = web.state.mailflow.app  # type: ignore[attr-defined]
    app.__dict__["database"] = sqlite_db
    with sqlite_db.session() as s:  # nobody in the registry: not automatic
        row = store(s, mail("Prórroga de residencia", PRORROGA, sender="ana@example.org"), NOW)
        process_inbox_message(app, s, row, NOW)
        case = s.get(Case, row.case_id)
        assert case is not None and case.state == "validado"
        number = case.number
    client = TestClient(web, follow_redirects=False)  # type: ignore[arg-type]
    _login(client, "ana")
    page = client.get("/bandeja").text
    assert number in page
    assert "Emisión con aprobación del personal" in page and "no figura en el registro" in page
    assert "Aprobar y enviar oficio a Migraciones" in page
