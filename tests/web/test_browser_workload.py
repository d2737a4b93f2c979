"""Issue 16 in headless Chromium: assignment by rule, "mis expedientes", reassignment, priority
order with its reason, vulnerability details by role, and panel figures equal to their lists
and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from mailflow.app import App
from mailflow.intake.values import normalise
from mailflow.store.db import Database
from mailflow.store.models import Applicant, Case, CaseEvent, OutboxMessage, User
from mailflow.web.engine import fire
from mailflow.web.users import add_user
from tests.support.web_seed import (
    NOW,
    PASSWORD,
    ROOT,
    UNCLASSIFIED,
    build,
    seed_users,
    settings_for,
)
from tests.support.web_seed import store as store_message
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, _free_port, login, shot

ASSIGNMENT = """\
officers: [ana, beto]
teams:
  mesa: [ana, beto]
rules:
  - name: mesa de partes
    team: mesa
    strategy: round_robin
"""
UNKNOWN_PERSON = b"""From: Pedro Quispe <pedro.quispe@example.org>
To: solicitantesrefugio@cepr.mailflow.localhost
Subject: Actualizacion de datos
Message-ID: <p1@example.org>
Date: Mon, 09 Mar 2026 08:00:00 -0500
Content-Type: text/plain; charset=utf-8

Nombre completo: Pedro Quispe Mamani
Nacionalidad: venezolana
Cedula: V-20.111.222
Celular: 912 345 678
"""
STATE: dict[str, object] = {}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live desk whose rules/ add assignment.yaml (team of ana and beto, round robin)."""
    tmp = tmp_path_factory.mktemp("workload")
    rules = tmp / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "assignment.yaml").write_text(ASSIGNMENT, encoding="utf-8")
    settings = settings_for(tmp).model_copy(update={"rules_dir": rules})
    db = Database(f"sqlite:///{tmp / 'mailflow.db'}")
    db.migrate()
    web = build(settings, db, [NOW + dt.timedelta(hours=2)])
    app: App = web.state.mailflow.app  # type: ignore[attr-defined]
    app.validate()
    seed_users(db)
    with db.session() as session:
        add_user(session, "beto", "Beto Ramos", "staff", PASSWORD)
        # the registry knows sample 01's applicant (by document): pregnant, another phone and
        # another address, so her actualización waits for staff (issue 11: only a registered
        # sender's update is applied at once) instead of being resolved on arrival
        session.add(
            Applicant(
                full_name="Ana María Rodríguez Pérez",
                document_number=normalise("document", "V-18.456.789")[0],
                email="ana.rodriguez@example.org",
                phone="999111222",
                data={"vulnerabilidad": "gestante"},
            )
        )
    store_message(db, app, UNKNOWN_PERSON, 1)  # → review (not in the registry), normal priority
    store_message(db, app, UNCLASSIFIED, 2)  # → exception queue, no case
    for uid, name in enumerate(["01_actualizacion_datos", "06_prorroga_residencia"], start=10):
        store_message(db, app, (ROOT / "samples" / f"{name}.eml").read_bytes(), uid)
    store_message(db, app, (ROOT / "samples" / "07_duplicado_carne.eml").read_bytes(), 12)
    with db.session() as session:  # one case answered, its reply delivered: "en plazo"
        case = session.scalars(select(Case).where(Case.state == "validado")).first()
        assert case is not None
        fire(session, app, case, "rechazar", actor="usuario:ana", now=NOW, reason="duplicado")
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id)):
            row.status, row.sent_at = "sent", NOW + dt.timedelta(minutes=5)
        STATE["resolved"] = case.number
    STATE["db"] = db
    port = _free_port()
    config = uvicorn.Config(web, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        yield p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, locale="es-PE")
    context.set_default_timeout(15000)
    tab = context.new_page()
    yield tab
    context.close()


def _db() -> Database:
    db = STATE["db"]
    assert isinstance(db, Database)
    return db


def _assigned(username: str) -> set[str]:
    with _db().session(readonly=True) as session:
        uid = session.scalar(select(User.id).where(User.username == username))
        return set(session.scalars(select(Case.number).where(Case.assignee_id == uid)))


def test_new_cases_are_assigned_by_rule_and_mis_expedientes_lists_mine(page: Page) -> None:
    ana, beto = _assigned("ana"), _assigned("beto")
    assert len(ana) == len(beto) == 2 and not ana & beto  # round robin shared the four cases
    login(page, "ana")
    page.get_by_role("link", name="Mis expedientes").click()
    expect(page.get_by_role("heading", name="Mis expedientes")).to_be_visible()
    numbers = page.locator("table.table a.mono")
    expect(numbers).to_have_count(len(ana))
    assert {numbers.nth(i).inner_text() for i in range(numbers.count())} == ana
    expect(page.locator("td.assignee").first).to_have_text("Ana Quispe")
    shot(page, "mis-expedientes")
    numbers.first.click()
    expect(page.locator("#responsable")).to_contain_text("Asignado a Ana Quispe")
    expect(page.locator(".timeline")).to_contain_text("por la regla «mesa de partes»")
    expect(page.locator("#responsable form")).to_have_count(0)  # staff do not reassign
    assert "staff" not in page.locator("#responsable").inner_text()


def test_manager_reassigns_and_it_is_audited(page: Page) -> None:
    number = sorted(_assigned("ana"))[0]
    login(page, "jefa")
    page.goto(f"/expedientes?q={number}")
    page.locator("table.table a.mono", has_text=number).click()
    form = page.locator("#responsable form")
    form.get_by_label("Reasignar a").select_option("beto")
    form.get_by_label("Motivo").fill("redistribución de carga")
    form.get_by_role("button", name="Reasignar").click()
    expect(page.locator(".flash")).to_contain_text("asignado a Beto Ramos")
    expect(page.locator("#responsable")).to_contain_text("Asignado a Beto Ramos")
    expect(page.locator(".timeline")).to_contain_text(
        "Reasignado de Ana Quispe a Beto Ramos. Motivo: redistribución de carga"
    )
    expect(page.locator(".timeline")).to_contain_text("Rosa Salas")  # issue 15: actor's name
    with _db().session(readonly=True) as session:
        actors = session.scalars(
            select(CaseEvent.actor).where(
                CaseEvent.kind == "assign", CaseEvent.reason.like("Reasignado%")
            )
        ).all()
    assert "usuario:jefa" in actors
    shot(page, "reasignado")
    beto = _assigned("beto")
    assert number in beto and number not in _assigned("ana")
    page.get_by_role("navigation").get_by_role("link", name="Expedientes", exact=True).click()
    page.get_by_label("Responsable").select_option(label="Beto Ramos")
    page.get_by_role("button", name="Filtrar").click()
    expect(page.locator("table.table tbody tr")).to_have_count(len(beto))
    expect(page.locator("td.assignee", has_text="Beto Ramos")).to_have_count(len(beto))


def test_queue_orders_by_priority_and_says_why_without_details_for_staff(page: Page) -> None:
    login(page, "ana")
    page.goto("/bandeja")
    cases = page.locator("li.qitem-expediente")
    expect(cases).to_have_count(3)  # and one oficio awaiting approval (`validado`, issue 11)
    first, second = cases.nth(0), cases.nth(1)
    # the registry's pregnant applicant arrived after Pedro but comes first
    expect(first).to_contain_text("Ana María Rodríguez Pérez")
    expect(first.locator(".qprio")).to_contain_text("Prioridad alta")
    expect(first.locator(".qprio")).to_contain_text("Datos de vulnerabilidad reservados")
    expect(second).to_contain_text("Pedro Quispe Mamani")
    expect(second.locator(".qprio")).to_contain_text("Prioridad normal")
    assert "Gestante" not in page.content()
    shot(page, "bandeja-prioridad")
    first.locator("a").first.click()
    expect(page.locator("#prioridad")).to_contain_text("Prioridad alta")
    expect(page.locator("#prioridad")).to_contain_text("Datos de vulnerabilidad reservados")
    expect(page.locator("#prioridad form")).to_have_count(0)
    assert "Gestante" not in page.content()
    expect(page.locator("#registro")).to_contain_text("Ana María Rodríguez Pérez")
    expect(page.locator("#registro .diffs")).to_contain_text("999111222")
    shot(page, "expediente-staff-sin-detalle")


def test_solo_lo_mio_keeps_only_my_cases_in_priority_order(page: Page) -> None:
    with _db().session(readonly=True) as session:
        uid = session.scalar(select(User.id).where(User.username == "beto"))
        mine = set(
            session.scalars(
                select(Case.number).where(
                    Case.assignee_id == uid, Case.state.in_(["en_revision", "validado"])
                )
            )
        )
    assert mine
    login(page, "beto")
    page.goto("/bandeja")
    page.get_by_role("link", name="Solo lo mío").click()
    items = page.locator("li.qitem")
    expect(items).to_have_count(len(mine))  # only cases: messages have no assignee
    expect(page.locator("li.qitem-expediente")).to_have_count(len(mine))
    for i in range(len(mine)):
        expect(items.nth(i).locator(".qprio")).to_contain_text("Responsable: Beto Ramos")
    expect(items.first).to_contain_text("Ana María Rodríguez Pérez")  # highest priority first
    expect(page.get_by_role("link", name="Ver toda la bandeja")).to_be_visible()
    page.get_by_role("button", name="Filtrar").click()  # the filter form keeps "responsable"
    expect(page.locator("li.qitem")).to_have_count(len(mine))


def test_manager_sees_confirms_vulnerability_and_each_view_is_audited(page: Page) -> None:
    login(page, "jefa")
    page.goto("/bandeja")
    expect(page.locator("li.qitem-expediente").first).to_contain_text("reservados")
    assert "Gestante" not in page.content()  # lists never show details: only the audited page
    page.locator("li.qitem-expediente").first.locator("a").first.click()
    box = page.locator("#prioridad")
    expect(box).to_contain_text("Gestante (por confirmar; según el registro)")
    box.get_by_role("button", name="Confirmar").click()
    expect(page.locator("#prioridad")).to_contain_text("Gestante (confirmado; según el registro)")
    shot(page, "expediente-jefa-vulnerabilidad")
    with _db().session(readonly=True) as session:
        kinds = [
            (e.kind, e.actor)
            for e in session.scalars(
                select(CaseEvent).where(CaseEvent.kind.in_(["vulnerabilidad_vista", "prioridad"]))
            )
        ]
    assert kinds.count(("vulnerabilidad_vista", "usuario:jefa")) >= 2  # before and after
    assert ("prioridad", "usuario:jefa") in kinds
    assert not any(
        actor == "usuario:ana" for kind, actor in kinds if kind == "vulnerabilidad_vista"
    )


def test_panel_figures_equal_their_lists_and_csv(page: Page) -> None:
    login(page, "jefa")
    page.goto("/panel/cifras?desde=2026-03-01&hasta=2026-03-31")
    shot(page, "panel-cifras")
    figures = {}
    for metric in ("recibidos", "en_plazo", "pendientes", "vencidos"):
        figures[metric] = int(page.locator(f"#cifra-{metric} .value").inner_text())
    assert figures["recibidos"] == 4 and figures["en_plazo"] == 1 and figures["pendientes"] == 3
    chart_total = page.locator("h2", has_text="Recibidos por día").inner_text()
    assert f"total {figures['recibidos']}" in chart_total  # the chart adds up to the figure
    for metric, value in figures.items():
        page.goto("/panel/cifras?desde=2026-03-01&hasta=2026-03-31")
        page.locator(f"#cifra-{metric}").click()
        expect(page.locator("#list-count")).to_have_text(str(value))
        expect(page.locator("table.table tbody tr")).to_have_count(value)
        listed = [
            page.locator("table.table tbody tr a.mono").nth(i).inner_text() for i in range(value)
        ]
        if metric == "pendientes":
            assert STATE["resolved"] not in listed  # resolved is never pending
        href = page.get_by_role("link", name="Exportar CSV").get_attribute("href")
        assert href is not None
        body = page.request.get(href).text().lstrip("\ufeff")
        rows = list(csv.reader(io.StringIO(body)))
        assert rows[0][0] == "expediente" and [r[0] for r in rows[1:]] == listed
    page.goto("/panel/cifras?desde=2026-03-01&hasta=2026-03-31")
    cell = page.locator("#por-responsable tbody tr", has_text="Beto Ramos").locator("td").nth(1)
    beto = int(cell.inner_text())
    cell.locator("a").click()
    expect(page.locator("#list-count")).to_have_text(str(beto))
    expect(page.locator("table.table tbody tr")).to_have_count(beto)
    shot(page, "panel-lista-responsable")
    page.goto("/panel/cifras?desde=2026-03-01&hasta=2026-03-31")
    backlog = page.locator("#cifra-bandeja .value").inner_text()
    page.locator("#cifra-bandeja").click()
    expect(page.locator(".page-head .count")).to_have_text(f"{backlog} pendientes")
    expect(page.locator("li.qitem")).to_have_count(int(backlog))
    pdf = page.request.get("/reportes/panel.pdf?desde=2026-03-01&hasta=2026-03-31")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
