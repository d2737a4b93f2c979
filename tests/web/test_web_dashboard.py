"""Managers' dashboard over HTTP: charts, lists, CSV and PDF downloads, and who may see them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from starlette.testclient import TestClient

from mailflow.store.db import Database
from mailflow.store.models import Applicant
from mailflow.web import create_app, default_groups
from mailflow.web import dashboard as dashboard_routes
from tests.support.cases_seed import LIMA, seed_standard
from tests.support.web_seed import PASSWORD, seed_users, settings_for

NOW = dt.datetime(2026, 3, 16, 12, 0, tzinfo=LIMA)


@pytest.fixture
def client(sqlite_db: Database, tmp_path: Path) -> TestClient:
    seed_users(sqlite_db)
    with sqlite_db.session() as session:
        seed_standard(session)
    groups = [*default_groups(), dashboard_routes.routes]
    web = create_app(settings_for(tmp_path), sqlite_db, groups)
    web.state.clock = lambda: NOW
    return TestClient(web, follow_redirects=False)


def login(client: TestClient, username: str) -> None:
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    data = {"username": username, "password": PASSWORD, "csrf_token": found.group(1)}
    assert client.post("/login", data=data).status_code == 303


def test_manager_sees_kpis_and_svg_charts(client: TestClient) -> None:
    login(client, "jefa")
    page = client.get("/panel")
    assert page.status_code == 200
    html = page.text
    assert html.count('<svg class="chart"') == 3
    assert 'aria-label="Cumplimiento de plazos por mes"' in html
    assert "feb 2026" in html and "Admitido (en trámite)" in html
    assert "66,7 %" in html and "76,9 %" in html  # overall and actualización de datos
    assert "<title>feb 2026 · En plazo: 10</title>" in html
    assert "<title>feb 2026 · Fuera de plazo: 5</title>" in html
    assert 'href="/reportes/sla.pdf"' in html and 'href="/panel/vencidos"' in html
    assert "<script" not in html.split("<main", 1)[1]  # charts are plain SVG


def test_overdue_and_due_soon_lists_link_to_cases(client: TestClient) -> None:
    login(client, "jefa")
    overdue = client.get("/panel/vencidos").text
    assert overdue.count("/expedientes/") == 2
    assert "EXP-2026-000014" in overdue and "Luis Gómez" in overdue and "5 d.h." in overdue
    assert "EXP-2026-000016" not in overdue  # observado: clock paused
    soon = client.get("/panel/por-vencer").text
    assert "EXP-2026-000017" in soon and "EXP-2026-000018" in soon
    assert "EXP-2026-000019" not in soon  # 5 días hábiles left: not yet due soon


def test_csv_export(client: TestClient) -> None:
    login(client, "jefa")
    response = client.get("/reportes/sla.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "cumplimiento-plazos-2026-03-16.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["tramite", "procedimiento", "mes"]
    assert rows[1] == [
        "actualizacion_datos",
        "Actualización de datos",
        "2026-02",
        "10",
        "3",
        "13",
        "76.9",
    ]
    assert len(rows) == 3


def test_pdf_report_download(client: TestClient) -> None:
    login(client, "admin")
    response = client.get("/reportes/sla.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert "Periodo: 01/10/2025 al 16/03/2026" in text and "76,9 %" in text


@pytest.mark.parametrize(
    "path",
    ["/panel", "/panel/vencidos", "/panel/por-vencer", "/reportes/sla.csv", "/reportes/sla.pdf"],
)
def test_staff_gets_403_and_anonymous_goes_to_login(client: TestClient, path: str) -> None:
    assert client.get(path).status_code in (302, 303, 307)
    login(client, "ana")
    assert client.get(path).status_code == 403


def test_registry_upload_mapping_preview_import(sqlite_db: Database, tmp_path: Path) -> None:
    from mailflow.web import registry as registry_routes
    from tests.registry.test_registry import CSV_LATIN1

    seed_users(sqlite_db)
    web = create_app(settings_for(tmp_path), sqlite_db, [*default_groups(), registry_routes.routes])
    client = TestClient(web, follow_redirects=False)
    login(client, "jefa")
    page = client.get("/registro")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    mapped = client.post("/registro/subir", data={"csrf_token": token},
                         files={"archivo": ("padron.csv", CSV_LATIN1, "text/csv")})  # fmt: skip
    assert mapped.status_code == 200 and 'value="full_name" selected' in mapped.text
    file_token = re.search(r'name="token" value="([^"]+)"', mapped.text).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": token, "token": file_token, "nombre": "padron.csv", "col0": "full_name",
            "col1": "document_number", "col2": "carne_extranjeria", "col3": "email"}  # fmt: skip
    preview = client.post("/registro/vista-previa", data=form)
    assert "María Pérez Gómez" in preview.text and "nombre incompleto" in preview.text
    done = client.post("/registro/importar", data=form)
    assert "personas nuevas" in done.text and "Filas rechazadas" in done.text
    with sqlite_db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Applicant)) == 2
    assert client.post("/registro/subir", data={}).status_code == 403  # no CSRF token
    staff = TestClient(web, follow_redirects=False)
    login(staff, "ana")
    assert staff.get("/registro").status_code == 403


def test_dashboard_received_figure_and_period_figures_equal_their_lists(
    client: TestClient,
) -> None:
    login(client, "jefa")
    html = client.get("/panel").text
    found = re.search(r'<a class="kpi" href="([^"]+)"><div class="value">(\d+)</div>', html)
    assert found, "the received figure links to its list"
    href, figure = found.group(1).replace("&amp;", "&"), int(found.group(2))
    listed = client.get(href).text
    assert f'<span id="list-count">{figure}</span>' in listed
    assert listed.count('<a class="mono strong" href="/expedientes/') == figure
    cifras = client.get("/panel/cifras?desde=2025-10-01&hasta=2026-03-16").text
    for metric in ("recibidos", "en_plazo", "fuera_de_plazo", "pendientes", "vencidos"):
        value = re.search(rf'id="cifra-{metric}" href="([^"]+)"><div class="value">(\d+)<', cifras)
        assert value, metric
        rows = client.get(value.group(1).replace("&amp;", "&")).text
        assert rows.count('<a class="mono strong" href="/expedientes/') == int(value.group(2))
        csv_href = re.search(r'href="(/reportes/expedientes\.csv[^"]+)"', rows)
        assert csv_href
        body = client.get(csv_href.group(1).replace("&amp;", "&")).text.lstrip("\ufeff")
        assert len(list(csv.reader(io.StringIO(body)))) == int(value.group(2)) + 1
