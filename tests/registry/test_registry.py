"""Applicant registry: CSV/XLSX import with mapping, rejected rows, matching and audited updates."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from mailflow.registry import applicants as registry
from mailflow.store.db import Database
from mailflow.store.models import Applicant, CaseEvent
from tests.support.cases_seed import add_case

CSV_LATIN1 = (
    "Nombres y Apellidos;N° Doc;Carné;Correo;Estado;Teléfono\n"
    "MARÍA PÉREZ GÓMEZ;V-12.345.678;001234567;Maria@Example.org;Refugiado;987 654 321\n"
    "Juan;;;juan@example.org;Solicitante;\n"
    "Luis Gómez Díaz;AB123;12345;luis@example;Solicitante;\n"
    "Ana Torres Ruiz;P9988776;;ana@example.org;Solicitante;01 4567890\n"
).encode("latin-1")


def test_suggested_mapping_from_spanish_headers() -> None:
    headers = ["Nombres y Apellidos", "N° Doc", "CARNÉ", "Correo electrónico", "Estado", "Obs."]
    assert registry.suggest_mapping(headers) == {
        0: "full_name", 1: "document_number", 2: "carne_extranjeria", 3: "email", 4: "status",
    }  # fmt: skip


def test_latin1_semicolon_csv_import_with_rejected_rows(sqlite_db: Database) -> None:
    sheet = registry.read_sheet(CSV_LATIN1, "padron.csv")
    assert sheet.headers[2] == "Carné"
    plan = registry.plan_import(sheet, registry.suggest_mapping(sheet.headers))
    assert [line for line, _ in plan.valid] == [2, 5]
    reasons = dict(plan.rejected)
    assert "Nombres y apellidos: nombre incompleto" in reasons[3]
    assert "carné de extranjería debe tener 9 dígitos" in reasons[4]
    assert "correo electrónico no válido" in reasons[4]
    with sqlite_db.session() as session:
        report = registry.import_plan(session, plan)
    assert (report.created, report.updated, len(report.rejected)) == (2, 0, 2)
    with sqlite_db.session(readonly=True) as session:
        maria = registry.find_applicant(session, carne="CE 001234567")
        assert maria is not None
        assert (maria.full_name, maria.document_number, maria.email, maria.status, maria.phone) == (
            "María Pérez Gómez", "V12345678", "maria@example.org", "refugiado", "+51987654321",
        )  # fmt: skip
        assert registry.find_applicant(session, email="ANA@example.org") is not None
        assert registry.find_applicant(session, document="X000000") is None


def test_xlsx_import_upserts_by_document(sqlite_db: Database) -> None:
    def xlsx(rows: list[list[object]]) -> bytes:
        book = Workbook()
        for row in rows:
            book.active.append(row)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    first = xlsx(
        [["Nombre completo", "Documento", "Email"], ["Rosa Salas Paz", 45678912.0, "rosa@x.org"]]
    )
    again = xlsx(
        [["Nombre completo", "Documento", "Email"], ["Rosa Salas Paz", 45678912, "rosa@nuevo.org"]]
    )
    for data, expected in ((first, (1, 0)), (again, (0, 1))):
        sheet = registry.read_sheet(data, "lista.xlsx")
        plan = registry.plan_import(sheet, registry.suggest_mapping(sheet.headers))
        with sqlite_db.session() as session:
            report = registry.import_plan(session, plan)
        assert (report.created, report.updated) == expected
    with sqlite_db.session(readonly=True) as session:
        people = session.scalars(select(Applicant)).all()
    assert [(p.document_number, p.email) for p in people] == [("45678912", "rosa@nuevo.org")]


def test_unreadable_or_unmapped_files_get_clear_errors() -> None:
    with pytest.raises(registry.RegistryError, match=r"lista\.xlsx: no es un archivo Excel"):
        registry.read_sheet(b"PK\x03\x04 broken", "lista.xlsx")
    with pytest.raises(registry.RegistryError, match="vacío"):
        registry.read_sheet(b"\n\n", "vacio.csv")
    sheet = registry.read_sheet(b"Correo,Estado\na@b.org,x\n", "x.csv")
    with pytest.raises(registry.RegistryError, match="nombres y apellidos"):
        registry.plan_import(sheet, registry.suggest_mapping(sheet.headers))


def test_cross_check_and_audited_update(sqlite_db: Database) -> None:
    now = dt.datetime(2026, 3, 16, 15, tzinfo=dt.UTC)
    with sqlite_db.session() as session:
        person = Applicant(full_name="María Pérez Gómez", document_number="V12345678",
                           email="maria@example.org", phone="+51987654321")  # fmt: skip
        session.add(person)
        case = add_case(session, 1, "actualizacion_datos", dt.date(2026, 3, 16))
        session.flush()
        fields = {"nombres_apellidos": "maria perez gomez", "documento_identidad": "V-12345678",
                  "telefono": "912 345 678"}  # fmt: skip
        assert registry.cross_check(person, fields) == [
            "Teléfono: la solicitud indica «912 345 678», el registro «+51987654321»"
        ]
        assert registry.is_registered_sender(person, "Maria <MARIA@example.org>")
        assert not registry.is_registered_sender(person, "otra@example.org")
        changes = registry.apply_data_update(session, person, fields, "usuario:ana", case, now)
        assert changes == {"phone": ("+51987654321", "+51912345678")}
        assert person.full_name == "María Pérez Gómez"  # accents kept
    with sqlite_db.session(readonly=True) as session:
        [event] = session.scalars(select(CaseEvent)).all()
    assert event.kind == "data_update" and event.actor == "usuario:ana"
    assert event.data["before"]["phone"] == "+51987654321"
    assert event.data["after"]["phone"] == "+51912345678"
