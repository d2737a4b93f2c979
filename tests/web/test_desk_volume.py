"""The desk's building blocks at volume (issue 15): folded search, labels, deadlines shown,
queue filtering/grouping/paging, notes, the /verificar form and complete constancias."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailflow.app import App
from mailflow.documents.verification import Constancia, verify_code
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, Document
from mailflow.store.search import case_number, matches, search_text, terms
from mailflow.web.labels import Labels, dmy, reason_group, reason_text
from mailflow.web.plazo import days_left, left_text, plazo
from mailflow.web.queue import PAGE_SIZE, Row, select_page
from tests.support.desk_seed import seed_volume
from tests.support.web_seed import NOW, PASSWORD, build, seed_users, settings_for


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    return App(settings_for(tmp_path_factory.mktemp("app")))


# -- search ---------------------------------------------------------------------------


def test_search_text_is_folded_and_includes_identity_fields() -> None:
    text = search_text(
        "EXP-2026-000123",
        "José Gregorio LÓPEZ",
        "12345678",
        "Oriana.Rivas@Example.org",
        {"carne_extranjeria": {"value": "CE-001122"}, "motivo": {"value": "turismo"}},
    )
    assert text.startswith(" ") and text.endswith(" ")
    for word in ["exp", "000123", "jose", "gregorio", "lopez", "oriana", "rivas", "ce", "001122"]:
        assert f" {word} " in text
    assert "turismo" not in text  # only names, numbers and emails are searchable
    assert terms("  López   JOSÉ ") == ["lopez", "jose"]


def test_case_number_is_recognised_only_when_spelled_in_full() -> None:
    assert case_number("exp-2026-123") == "EXP-2026-000123"
    assert case_number("EXP 2026 000123") == "EXP-2026-000123"
    assert case_number("ce0000002") is None
    assert case_number("jose 2026") is None


def test_search_matches_any_order_without_accents(sqlite_db: Database) -> None:
    seeded = seed_volume(sqlite_db, messages=0, review_cases=5, other_cases=300, now=NOW)
    with sqlite_db.session(readonly=True) as session:
        for typed in ["lopez jose", "RIVAS gregorio López", "josé   rivas"]:
            names = session.scalars(
                select(Case.applicant_name).where(matches(Case.search_text, typed))
            ).all()
            assert seeded.known_name in names, typed
            assert all(
                set(terms(typed)) <= set(search_text(None, n, None, None).split()) for n in names
            )
    assert terms("50% _x_") == ["50", "x"]  # LIKE wildcards typed by a user never reach SQL


def test_search_text_follows_orm_changes(sqlite_db: Database, app: App) -> None:
    seed_volume(sqlite_db, messages=0, review_cases=1, other_cases=0, now=NOW)
    with sqlite_db.session() as session:
        case = session.scalars(select(Case)).one()
        case.applicant_name = "Ñusta Peña"
    with sqlite_db.session(readonly=True) as session:
        case = session.scalars(select(Case)).one()
        assert " nusta pena " in case.search_text


# -- labels ---------------------------------------------------------------------------


def test_labels_give_spanish_for_every_code(app: App) -> None:
    labels = Labels.of(app, {"ana": "Ana Quispe"})
    assert labels.state("en_revision") == "En revisión por el personal"
    assert labels.tramite("autorizacion_viaje") == "Autorización de Viaje"
    assert labels.flag("asignado_staff") == "Asignado al personal"
    assert labels.flag("extemporaneo") == "Extemporáneo"
    assert labels.flag("codigo_nuevo") == "Codigo nuevo"  # unknown: never the raw snake_case
    assert labels.mailbox("solicitantesrefugio") == "Solicitantes de refugio"
    assert labels.actor("usuario:ana") == "Ana Quispe"
    assert labels.actor("sistema") == "Sistema"
    assert labels.missing(["documento_firmado"]) != ["documento_firmado"]
    assert labels.document("autorizacion_viaje") == "Autorización de Viaje"
    assert dmy(dt.date(2026, 3, 9)) == "09/03/2026" and dmy("2026-03-09") == "09/03/2026"


def test_reasons_are_readable_and_grouped() -> None:
    jargon = (
        "Trámite identificado por el asunto: Recurso de Reconsideración (coincidencia 100% con "
        "«recurso reconsideracion»); Recurso extemporáneo: presentado después de 15 días hábiles "
        "desde la notificación (2026-01-10)"
    )
    text = reason_text(jargon)
    assert "coincidencia" not in text and "«recurso" not in text
    assert "10/01/2026" in text and "2026-01-10" not in text
    assert reason_group(jargon) == "Recurso extemporáneo"
    assert reason_text("Firma indeterminate: certificado desconocido") == (
        "Firma por verificar: certificado desconocido"
    )
    assert reason_group("El asunto «hola» menciona más de un trámite (A, B)") == (
        "Varios trámites posibles"
    )
    assert reason_group("Motivo nuevo de otro módulo: detalle 42") == "Motivo nuevo de otro módulo"


# -- deadlines ------------------------------------------------------------------------


def test_a_five_day_term_shows_five_days_left_on_receipt(app: App) -> None:
    cal = app.calendario
    monday = dt.date(2026, 3, 9)
    due = cal.add_business_days(monday, 5)
    assert days_left(cal, monday, monday, due) == 5
    saturday = dt.date(2026, 3, 7)  # arrived on Saturday: legal receipt on Monday
    assert days_left(cal, saturday, monday, due) == 5
    assert left_text(5) == "Quedan 5 días hábiles"
    assert left_text(1) == "Queda 1 día hábil" and left_text(0) == "Vence hoy"
    assert left_text(-2) == "Vencido hace 2 días hábiles"


def test_closed_case_says_whether_it_was_answered_in_time(app: App) -> None:
    case = Case(
        legal_receipt_day=dt.date(2026, 3, 2),
        due_date=dt.date(2026, 3, 9),
        closed_at=dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC),
        sla={},
    )
    late = plazo(app.calendario, case, dt.date(2026, 3, 20), "stopped")
    assert late.in_time is False and late.left is None
    case.closed_at = dt.datetime(2026, 3, 9, 20, 0, tzinfo=dt.UTC)  # 15:00 in Lima, same day
    assert plazo(app.calendario, case, dt.date(2026, 3, 20), "stopped").in_time is True
    observed = Case(legal_receipt_day=dt.date(2026, 3, 2), due_date=None, closed_at=None,
                    sla={"subsanacion_deadline": "2026-03-16"})  # fmt: skip
    assert plazo(app.calendario, observed, NOW.date(), "paused").subsanacion == dt.date(2026, 3, 16)


# -- queue ----------------------------------------------------------------------------


def _rows(n: int) -> list[Row]:
    out = []
    for i in range(n):
        kind = "expediente" if i % 4 == 0 else "mensaje"
        reason = "Recurso extemporáneo: x" if kind == "expediente" else "Fuera del catálogo: y"
        arrived = NOW - dt.timedelta(hours=i)
        out.append(
            Row(kind, i, arrived, "mesadepartes" if i % 2 else "refugiados",
                "reconsideracion" if kind == "expediente" else None, reason,
                reason_group(reason), dt.date(2026, 4, 1) - dt.timedelta(days=i % 9),
                number=f"EXP-2026-{i:06d}", name=f"Persona {i}")
        )  # fmt: skip
    return out


def test_queue_page_is_bounded_grouped_filtered_and_sorted() -> None:
    rows = _rows(2000)
    page = select_page(rows, {}, NOW)
    assert len(page.rows) == PAGE_SIZE and page.total == 2000 and page.pages == 80
    assert dict(page.groups) == {"Fuera del catálogo": 1500, "Recurso extemporáneo": 500}
    assert page.rows[0].arrived == min(r.arrived for r in rows)  # oldest first
    cases = select_page(rows, {"motivo": "Recurso extemporáneo", "orden": "vence"}, NOW)
    assert cases.total == 500 and {r.kind for r in cases.rows} == {"expediente"}
    dues = [r.due for r in cases.rows]
    assert dues == sorted(dues)  # type: ignore[type-var]
    old = select_page(rows, {"edad": "7", "buzon": "refugiados", "tramite": "-"}, NOW)
    assert all(r.mailbox == "refugiados" and r.tramite is None for r in old.rows)
    assert all(NOW - r.arrived >= dt.timedelta(days=7) for r in old.rows)
    assert select_page(rows, {"pagina": "999"}, NOW).page == 80
    assert select_page(rows, {"q": "persona 17"}, NOW).total >= 1


# -- web: notes, /verificar, constancia -----------------------------------------------


def _client(db: Database, tmp: Path) -> TestClient:
    seed_users(db)
    web = build(settings_for(tmp), db, [NOW])
    client = TestClient(web, follow_redirects=False)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    data = {"username": "ana", "password": PASSWORD, "csrf_token": token[1]}
    assert client.post("/login", data=data).status_code == 303
    return client


def _token(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found[1]


def test_internal_notes_on_cases_and_messages(sqlite_db: Database, tmp_path: Path) -> None:
    seeded = seed_volume(sqlite_db, messages=2, review_cases=1, other_cases=0, now=NOW)
    client = _client(sqlite_db, tmp_path)
    case_id, message_id = seeded.review_case_ids[0], seeded.message_ids[0]
    token = _token(client, f"/expedientes/{case_id}")
    answer = client.post(f"/expedientes/{case_id}/notas", data={"csrf_token": token,
                         "note": "Llamar al titular"})  # fmt: skip
    assert answer.status_code == 303
    page = client.get(f"/expedientes/{case_id}").text
    assert "Llamar al titular" in page and "Ana Quispe" in page
    client.post(f"/bandeja/mensajes/{message_id}/notas", data={"csrf_token": token,
                "note": "Parece spam"})  # fmt: skip
    assert "Parece spam" in client.get(f"/bandeja/mensajes/{message_id}").text
    with sqlite_db.session(readonly=True) as session:
        kinds = session.scalars(select(CaseEvent.kind).where(CaseEvent.kind == "nota")).all()
    assert len(kinds) == 2
    listing = client.get("/bandeja?tipo=mensaje").text
    assert "Fuera del catálogo" in listing or "Trámite no reconocido" in listing


def test_verificar_without_a_code_shows_a_form(sqlite_db: Database, tmp_path: Path) -> None:
    client = TestClient(build(settings_for(tmp_path), sqlite_db), follow_redirects=False)  # type: ignore[arg-type]
    page = client.get("/verificar")
    assert page.status_code == 200 and 'name="codigo"' in page.text
    typed = client.get("/verificar", params={"codigo": "7k3m9 qx2rt"})
    assert typed.status_code == 303 and typed.headers["location"].startswith("/verificar/")
    wrong = client.get("/verificar", params={"codigo": "hola"})
    assert wrong.status_code == 200 and "no tiene el formato" in wrong.text


def test_constancia_of_a_travel_authorisation_shows_destination_and_dates(
    sqlite_db: Database, tmp_path: Path
) -> None:
    seed_volume(sqlite_db, messages=0, review_cases=1, other_cases=0, now=NOW)
    pdf = b"%PDF-1.7 autorizacion"
    (tmp_path / "doc.pdf").write_bytes(pdf)
    with sqlite_db.session() as session:
        case = session.scalars(select(Case)).one()
        case.fields = {**case.fields, "destino": {"value": "Quito, Ecuador"},
                       "fecha_salida": {"value": "2026-04-01"}, "fecha_retorno": "2026-04-20"}  # fmt: skip
        session.add(
            Document(case_id=case.id, kind="autorizacion_viaje", number="AV-2026-000001",
                     verification_code="7K3M9QX2RT", sha256=hashlib.sha256(pdf).hexdigest(),
                     path="doc.pdf", size=len(pdf), issued_at=NOW, event_key="t",
                     data={"titular": "José López"})
        )  # fmt: skip
    with sqlite_db.session(readonly=True) as session:
        result = verify_code(session, tmp_path, "7K3M9-QX2RT")
    assert isinstance(result, Constancia)
    assert dict(result.details) == {
        "Destino": "Quito, Ecuador",
        "Fecha de salida": "01/04/2026",
        "Fecha de retorno": "20/04/2026",
    }
    settings = settings_for(tmp_path)
    client = TestClient(build(settings, sqlite_db))  # type: ignore[arg-type]
    assert "Quito, Ecuador" in client.get("/verificar/7K3M9-QX2RT").text


def test_bulk_action_on_cases_in_review(sqlite_db: Database, tmp_path: Path) -> None:
    seeded = seed_volume(sqlite_db, messages=0, review_cases=12, other_cases=0, now=NOW)
    with sqlite_db.session(readonly=True) as session:
        general = session.scalars(
            select(Case.id).where(Case.id.in_(seeded.review_case_ids), Case.machine == "general")
        ).all()
    chosen = list(general[:2])
    assert len(chosen) == 2
    client = _client(sqlite_db, tmp_path)
    token = _token(client, "/bandeja?tipo=expediente")
    form = {"csrf_token": token, "event": "rechazar", "reason": "", "casos": [str(i) for i in chosen],
            "back": "/bandeja?tipo=expediente"}  # fmt: skip
    refused = client.post("/bandeja/lote", data=form)
    assert refused.status_code == 303 and refused.headers["location"] == "/bandeja?tipo=expediente"
    assert "Indique el motivo" in client.get("/bandeja?tipo=expediente").text
    done = client.post("/bandeja/lote", data={**form, "event": "admitir"})
    assert done.status_code == 303
    with sqlite_db.session(readonly=True) as session:
        states = session.scalars(select(Case.state).where(Case.id.in_(chosen))).all()
        others = session.scalars(
            select(Case.state).where(Case.id.in_(set(seeded.review_case_ids) - set(chosen)))
        ).all()
    assert set(states) == {"en_tramite"} and set(others) == {"en_revision"}
    assert "2 expedientes atendidos" in client.get("/bandeja").text


def test_attachments_open_in_the_browser_only_when_safe(
    sqlite_db: Database, tmp_path: Path
) -> None:
    from email.message import EmailMessage

    from mailflow.store.models import InboxMessage

    mail = EmailMessage()
    mail["From"] = "Ana <ana@example.org>"
    mail["To"] = "mesadepartes@cepr.mailflow.localhost"
    mail["Subject"] = "documentos"
    mail.set_content("Adjunto mis documentos.")
    mail.add_attachment(b"%PDF-1.4 prueba", maintype="application", subtype="pdf",
                        filename="carne.pdf")  # fmt: skip
    mail.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html",
                        filename="pagina.html")  # fmt: skip
    raw = mail.as_bytes()
    with sqlite_db.session() as session:
        row = InboxMessage(mailbox="mesadepartes", uidvalidity=1, uid=1, message_id="<a@b>",
                           sha256="0" * 64, raw=raw, size=len(raw), source="file",
                           arrived_at=NOW, status="set_aside")  # fmt: skip
        session.add(row)
        session.flush()
        message_id = row.id
    client = _client(sqlite_db, tmp_path)
    page = client.get(f"/bandeja/mensajes/{message_id}").text
    assert "carne.pdf" in page and "Adjunto mis documentos." in page
    pdf = client.get(f"/bandeja/mensajes/{message_id}/adjuntos/0")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline")
    html = client.get(f"/bandeja/mensajes/{message_id}/adjuntos/1")
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/bandeja/mensajes/{message_id}/adjuntos/9").status_code == 404
    fragment = client.get(f"/bandeja/mensajes/{message_id}?parcial=1").text
    assert "<html" not in fragment and "Adjunto mis documentos." in fragment
