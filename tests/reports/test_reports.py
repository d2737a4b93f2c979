"""SLA reports: CSV content, PDF text and charts, and the weekly email queued once per week."""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
from email import policy
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.config import Settings
from mailflow.reports import export as reports
from mailflow.reports import metrics
from mailflow.store.db import Database
from mailflow.store.models import OutboxMessage, User
from tests.support.cases_seed import CAL, LIMA, TODAY, seed_standard

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(sqlite_db: Database) -> App:
    settings = Settings(
        database_url=sqlite_db.url.render_as_string(hide_password=False),
        rules_dir=ROOT / "rules",
        state_machines_dir=ROOT / "state_machines",
        templates_dir=ROOT / "templates",
    )
    application = App(settings)
    application.__dict__["database"] = sqlite_db  # share the test's engine
    with sqlite_db.session() as session:
        seed_standard(session)
    return application


def _summary(app: App) -> metrics.Summary:
    with app.database.session(readonly=True) as session:
        return metrics.compute(session, CAL, TODAY, due_soon_days=3)


def _labels(app: App) -> reports.Labels:
    return reports.Labels.build(app.catalogue, app.machines)


def test_csv_rows_per_procedure_and_month(app: App) -> None:
    text = reports.sla_csv(_summary(app), _labels(app))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [tuple(r.values()) for r in rows] == [
        ("actualizacion_datos", "Actualización de datos", "2026-02", "10", "3", "13", "76.9"),
        ("prorroga_residencia", "Prórroga de residencia", "2026-02", "0", "2", "2", "0.0"),
    ]


def test_pdf_has_header_period_numbers_and_lists(app: App) -> None:
    pdf = reports.sla_pdf(_summary(app), _labels(app), "Comisión Especial", "16/03/2026 08:00")
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Reporte de cumplimiento de plazos" in text
    assert "Periodo: 01/10/2025 al 16/03/2026" in text
    assert "76,9 %" in text and "66,7 %" in text  # per procedure and overall
    assert "Actualización de datos" in text and "Prórroga de residencia" in text
    assert "EXP-2026-000014" in text and "EXP-2026-000017" in text  # overdue, due soon
    assert "feb 2026" in text and "Admitido (en trámite)" in text  # chart axis labels
    pages = len(reader.pages)
    for number, page in enumerate(reader.pages, start=1):  # header and "Página x de N" on each
        assert "Comisión Especial" in page.extract_text()
        assert f"Página {number} de {pages}" in page.extract_text()
    assert (
        reader.metadata is not None and reader.metadata.title == "Reporte de cumplimiento de plazos"
    )


def test_pdf_of_an_empty_database_says_so(sqlite_db: Database) -> None:
    with sqlite_db.session(readonly=True) as session:
        summary = metrics.compute(session, CAL, TODAY, due_soon_days=3)
    pdf = reports.sla_pdf(summary, reports.Labels(), "Comisión", "16/03/2026 08:00")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Sin expedientes con plazo vencido en el periodo" in text
    assert "No hay expedientes pendientes" in text
    assert "Ninguno." in text


def _manager(app: App, username: str, role: str = "manager", active: bool = True) -> None:
    with app.database.session() as session:
        session.add(User(username=username, full_name=username.title(), role=role,
                         password_hash="x", active=active))  # fmt: skip


def test_weekly_job_queues_one_email_per_manager_per_week(app: App) -> None:
    _manager(app, "gestora")
    _manager(app, "personal", role="staff")
    now = dt.datetime(2026, 3, 16, 7, 0, tzinfo=LIMA)
    to = ["Gestora@Example.org", "jefe@example.org"]
    first = reports.weekly_report_job(app, now, to)
    again = reports.weekly_report_job(app, now + dt.timedelta(hours=3), to)
    assert len(first) == 2 and again == []
    with app.database.session(readonly=True) as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(r.to_addr, r.dedupe_key, r.kind) for r in rows] == [
        ("gestora@example.org", "weekly:2026-W12:gestora@example.org", "weekly_report"),
        ("jefe@example.org", "weekly:2026-W12:jefe@example.org", "weekly_report"),
    ]
    msg = email.message_from_bytes(rows[0].raw, policy=policy.default)
    assert msg["Subject"] == "Reporte semanal de plazos — semana 2026-W12"
    body = msg.get_body(("plain",))
    assert body is not None and "Expedientes vencidos: 2" in body.get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "reporte-plazos-2026-W12.pdf"
    pdf_text = PdfReader(io.BytesIO(attachment.get_content())).pages[0].extract_text()
    assert "76,9 %" in pdf_text
    # next week: a new report
    later = reports.weekly_report_job(app, now + dt.timedelta(days=7), to[:1])
    assert len(later) == 1
    with app.database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 3


def test_weekly_job_without_recipients_queues_nothing(app: App) -> None:
    _manager(app, "gestora")
    assert reports.weekly_report_job(app, dt.datetime(2026, 3, 16, 7, tzinfo=LIMA)) == []


def test_week_key_uses_iso_year() -> None:
    assert reports.week_key(dt.date(2027, 1, 1)) == "weekly:2026-W53"
    assert reports.week_key(dt.date(2026, 3, 16)) == "weekly:2026-W12"
