"""`mailflow registry import`: the web page's mapping, validation and rejected-row report."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import select

from mailflow.cli import cli
from mailflow.registry.applicants import RegistryError
from mailflow.registry.command import import_file, mapping_for
from mailflow.store.db import Database
from mailflow.store.models import Applicant

ROOT = Path(__file__).resolve().parents[2]
HEADERS = ["Apellidos y nombres", "Carné de extranjería", "Correo electrónico", "Situación"]
ROWS = [
    ["Ana Gómez Ruiz", "000123456", "ana@example.org", "Refugiada reconocida"],
    ["Luis Pérez Soto", "", "luis@example.org", "Solicitante"],  # no carné nor document
    ["Rosa Flores Paz", "12", "rosa@example.org", "RR"],  # carné of the wrong length
    ["Jorge Ríos Vega", "000654321", "correo-roto", "Cesado"],  # bad email
]


def _csv(tmp_path: Path, headers: list[str] = HEADERS) -> Path:
    path = tmp_path / "registro.csv"
    lines = [";".join(headers)] + [";".join(r) for r in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_import_reports_created_and_rejected_rows(tmp_path: Path, sqlite_db: Database) -> None:
    result = import_file(sqlite_db, _csv(tmp_path), ["Situación=status"])
    text = "\n".join(result.lines)
    assert result.code == 0
    assert "Situación → Estado" in text
    assert "Importado: 1 nuevos, 0 actualizados, 0 sin cambios, 3 rechazados" in text
    assert "fila 3: falta el número de documento o de carné" in text
    assert "fila 4: Carné de extranjería" in text and "fila 5: Correo registrado" in text
    assert "Estado: Refugiado(a) reconocido(a): 1" in text
    with sqlite_db.session(readonly=True) as s:
        (person,) = s.scalars(select(Applicant)).all()
    assert (person.carne_extranjeria, person.email, person.status) == (
        "000123456",
        "ana@example.org",
        "refugiada reconocida",
    )
    again = import_file(sqlite_db, _csv(tmp_path), ["Situación=status"])
    assert "0 nuevos, 0 actualizados, 1 sin cambios" in "\n".join(again.lines)


def test_map_by_header_number_or_letter_and_unmap(tmp_path: Path) -> None:
    assert mapping_for(HEADERS, []) == {
        0: "full_name",
        1: "carne_extranjeria",
        2: "email",
        3: "status",
    }
    assert 3 not in mapping_for(HEADERS, ["D="])
    moved = mapping_for(HEADERS, ["4=phone", "c=Correo registrado"])
    assert moved[3] == "phone" and moved[2] == "email"
    with pytest.raises(RegistryError, match="no hay una columna «Teléfono»"):
        mapping_for(HEADERS, ["Teléfono=phone"])
    assert mapping_for(HEADERS, ["Situación=teléfono"])[3] == "phone"  # the Spanish label works
    with pytest.raises(RegistryError, match="campo desconocido «color»"):
        mapping_for(HEADERS, ["Situación=color"])
    with pytest.raises(RegistryError, match="se esperaba COLUMNA=CAMPO"):
        mapping_for(HEADERS, ["Situación"])


def test_xlsx_dry_run_writes_nothing(tmp_path: Path, sqlite_db: Database) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    for row in ROWS:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    path = tmp_path / "registro.xlsx"
    path.write_bytes(out.getvalue())
    result = import_file(sqlite_db, path, [], dry_run=True)
    assert "Vista previa: 1 filas válidas, 3 rechazadas" in "\n".join(result.lines)
    with sqlite_db.session(readonly=True) as s:
        assert s.scalars(select(Applicant)).all() == []


def test_unusable_file_and_missing_columns_exit_2(tmp_path: Path, sqlite_db: Database) -> None:
    broken = tmp_path / "roto.xlsx"
    broken.write_bytes(b"PK\x03\x04 no es un zip")
    assert import_file(sqlite_db, broken).code == 2
    only_names = _csv(tmp_path, ["Apellidos y nombres", "Color", "Otra", "Más"])
    result = import_file(sqlite_db, only_names)
    assert result.code == 2 and "documento o carné" in result.lines[0]


def test_command_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--config", str(ROOT / "config.yaml"), "registry", "import", str(_csv(tmp_path)),
         "--map", "Situación=status"],
        env={"MAILFLOW_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 nuevos" in result.output and "fila 3:" in result.output
