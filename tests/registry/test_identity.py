"""Identity-changing requests are applied only from the applicant's registered address."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import Applicant, Case, CaseEvent
from tests.support.cases_support import APPLICANT, DATOS, MONDAY, mail, make_app, store

CAMBIO = "Nombres y apellidos: Juan Pérez Quispe\nPasaporte: 123456789\nTeléfono: 987654321\n"


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    return make_app(tmp_path, sqlite_db)


def _register(app: App, email: str | None = APPLICANT) -> None:
    with app.database.session() as s:
        s.add(
            Applicant(
                full_name="Juan Pérez Quispe",
                document_number="123456789",
                email=email,
                status="refugiado",
                nationality="venezolana",
            )
        )


def _run(app: App, raw: bytes) -> tuple[str | None, Case | None, list[str]]:
    now = MONDAY + dt.timedelta(minutes=1)
    with app.database.session() as s:
        row = store(s, raw)
        process_inbox_message(app, s, row, now)
        case = s.get(Case, row.case_id) if row.case_id else None
        reasons = [
            e.reason for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == row.case_id))
        ]
        s.expunge_all()
        return row.disposition, case, reasons


def test_registered_sender_is_applied_automatically(app: App) -> None:
    _register(app)
    disposition, case, _ = _run(app, mail("Cambio de clave y contraseña", CAMBIO))
    assert disposition == "accept"
    assert case is not None and case.state == "en_tramite"


def test_other_address_goes_to_review_and_is_never_applied(app: App) -> None:
    _register(app)
    raw = mail("Cambio de clave y contraseña", CAMBIO, sender="otra.persona@example.net")
    disposition, case, reasons = _run(app, raw)
    assert disposition == "review"
    assert case is not None and case.state == "en_revision"
    assert any("no es el registrado" in r and "juan.perez@example.org" in r for r in reasons)


def test_unknown_person_goes_to_review_once_registry_is_in_use(app: App) -> None:
    _register(app)
    body = DATOS.replace("123456789", "555666777")
    raw = mail("Actualización de datos", body, sender="desconocido@example.net")
    disposition, _, reasons = _run(app, raw)
    assert disposition == "review"
    assert any("no figura en el registro" in r for r in reasons)


def test_discrepancy_with_registry_is_reported(app: App) -> None:
    _register(app)
    body = DATOS.replace("venezolana", "colombiana")
    disposition, _, reasons = _run(app, mail("Actualización de datos", body))
    assert disposition == "review"
    assert any("Discrepancia con el registro" in r and "colombiana" in r for r in reasons)


def test_without_registry_requests_proceed(app: App) -> None:
    disposition, case, _ = _run(app, mail("Actualización de datos", DATOS))
    assert disposition == "accept"
    assert case is not None


def test_not_identity_sensitive_procedures_are_not_checked(app: App) -> None:
    _register(app, email="juan.registrado@example.org")
    body = (
        "Nombres y apellidos: Juan Pérez Quispe\nSexo: M\nNacionalidad: venezolana\n"
        "Pasaporte: 123456789\nCarné de extranjería: 000123456\n"
        "Fecha de nacimiento: 01/02/1990\nTeléfono: 987654321\n"
    )
    raw = mail("Prórroga de residencia", body, to="refugiados@cepr.mailflow.localhost")
    disposition, _, _ = _run(app, raw)
    assert disposition == "accept"


def test_check_reads_the_registry_as_production_does(app: App, tmp_path: Path) -> None:
    from mailflow.ops.checking import check_files, registry_reader

    _register(app)
    raw = mail("Cambio de clave y contraseña", CAMBIO, sender="otra.persona@example.net")
    sample = tmp_path / "otro.eml"
    sample.write_bytes(raw)
    [row] = check_files(app, [sample])
    disposition, _, _ = _run(app, raw)
    assert row["disposition"] == disposition == "review"
    assert "identidad" in row["checks"]
    assert any("no es el registrado" in r for r in row["reasons"])
    missing_db = make_app(tmp_path / "sin-bd", app.database, database_url="sqlite:///nada/x.db")
    assert registry_reader(missing_db) is None
    assert not (tmp_path / "nada").exists()
