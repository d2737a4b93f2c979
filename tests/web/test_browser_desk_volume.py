"""The desk with 2,000 pending items, in headless Chromium: paging, search, replies, deliberate
actions and the case CSV (issue 15). Items are bulk-inserted (tests/support/desk_seed.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import func, select

from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent, InboxMessage, OutboxMessage
from mailflow.web.queue import PAGE_SIZE
from tests.support.desk_seed import Seeded, seed_volume
from tests.support.web_seed import NOW, build, seed_users, settings_for
from tests.web.test_browser import DESKTOP, _free_port, _launch, login, shot

MESSAGES = 1500
REVIEW_CASES = 500
OTHER_CASES = 1000
MAX_QUEUE_PAGE_BYTES = 200_000


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database, Seeded]]:
    """A live desk on SQLite with 2,000 pending items (1,500 messages, 500 cases in review)."""
    tmp = tmp_path_factory.mktemp("volume")
    db = Database(f"sqlite:///{tmp / 'mailflow.db'}")
    db.migrate()
    web = build(settings_for(tmp), db, [NOW + dt.timedelta(hours=2)])
    seed_users(db)
    seeded = seed_volume(
        db, messages=MESSAGES, review_cases=REVIEW_CASES, other_cases=OTHER_CASES, now=NOW
    )
    port = _free_port()
    config = uvicorn.Config(web, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", db, seeded
    server.should_exit = True
    thread.join(timeout=10)
    db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        yield _launch(p)


@pytest.fixture
def page(browser: Browser, desk: tuple[str, Database, Seeded]) -> Iterator[Page]:
    context = browser.new_context(base_url=desk[0], viewport=DESKTOP, locale="es-PE")
    context.set_default_timeout(20_000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()


def test_queue_first_page_is_bounded_and_grouped(page: Page) -> None:
    login(page, "ana")
    response = page.goto("/bandeja")
    assert response is not None and response.ok
    body = response.body()
    assert len(body) < MAX_QUEUE_PAGE_BYTES, f"first page is {len(body)} bytes"
    expect(page.locator(".count")).to_have_text(f"{MESSAGES + REVIEW_CASES} pendientes")
    expect(page.locator("li.qitem")).to_have_count(PAGE_SIZE)
    chips = page.locator(".groups .chip")
    assert chips.count() >= 4
    expect(chips.first).to_contain_text(str(MESSAGES + REVIEW_CASES))
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 20_000, f"the first page is {height}px tall"
    shot(page, "volumen-bandeja")
    chips.filter(has_text="Recurso extemporáneo").click()
    expect(page.locator("li.qitem").first).to_contain_text("Extemporáneo")
    expect(page.locator("li.qitem-mensaje")).to_have_count(0)
    shot(page, "volumen-bandeja-motivo")
    page.goto("/bandeja?tipo=mensaje&orden=recientes&pagina=3")
    expect(page.locator("li.qitem-mensaje")).to_have_count(PAGE_SIZE)
    expect(page.locator(".pager")).to_contain_text("Página 3 de 60")
    page.locator("details.peek").first.locator("summary").click()
    expect(page.locator("details.peek").first.locator(".mailtext")).to_contain_text("Buenos días")
    shot(page, "volumen-bandeja-mensaje-abierto")


def test_search_ignores_accents_case_and_word_order(page: Page) -> None:
    login(page, "ana")
    page.goto("/expedientes")
    search = page.get_by_label("Buscar")
    for typed in ["lopez rivas jose gregorio", "GREGORIO LÓPEZ", "jose   gregorio lopez"]:
        search.fill(typed)
        search.press("Enter")
        expect(page.locator("table.table")).to_contain_text("José Gregorio López Rivas")
    shot(page, "volumen-busqueda")
    search.fill("exp-2026-1")
    search.press("Enter")
    expect(page.locator("table.table tbody tr")).to_have_count(1)
    search.fill("ce0000002")  # a carné number stored in the case fields
    search.press("Enter")
    expect(page.locator("table.table tbody tr")).to_have_count(1)


def test_answering_an_unclassified_message_sends_exactly_one_reply(
    page: Page, desk: tuple[str, Database, Seeded]
) -> None:
    _, db, seeded = desk
    message_id = seeded.message_ids[0]
    login(page, "ana")
    page.goto(f"/bandeja/mensajes/{message_id}")
    expect(page.locator(".mailtext")).to_contain_text("les escribe José Gregorio López Rivas")
    page.get_by_label("Plantilla").select_option(label="Pedir que indique el trámite")
    page.get_by_role("button", name="Usar plantilla").click()
    text = page.get_by_label("Texto de la respuesta")
    expect(text).to_have_value(re.compile("Actualización de datos"))
    shot(page, "volumen-responder")
    page.get_by_role("button", name="Vista previa…").click()
    expect(page.locator("h1")).to_have_text("Vista previa de la respuesta")
    address = f"persona{100_000}@example.org"
    expect(page.locator(".preview-head")).to_contain_text(address)
    shot(page, "volumen-vista-previa")
    page.get_by_role("button", name=f"Enviar respuesta a {address}").click()
    expect(page.locator(".flash-ok")).to_contain_text(f"Respuesta en cola de envío a {address}")
    # The same reply confirmed a second time (a double submission) is not sent again.
    page.goto(f"/bandeja/mensajes/{message_id}?plantilla=indicar_tramite")
    page.get_by_role("button", name="Vista previa…").click()
    page.get_by_role("button", name=f"Enviar respuesta a {address}").click()
    expect(page.locator(".flash-ok")).to_contain_text("Respuesta en cola de envío")
    with db.session(readonly=True) as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.inbox_message_id == message_id)
        ).all()
        message = session.get(InboxMessage, message_id)
        audit = session.scalars(
            select(CaseEvent).where(
                CaseEvent.inbox_message_id == message_id, CaseEvent.kind == "reply"
            )
        ).all()
    assert len(rows) == 1, [r.subject for r in rows]
    assert rows[0].to_addr == address and rows[0].status == "pending"
    assert b"Actualizaci" in rows[0].raw and b"Auto-Submitted" not in rows[0].raw
    assert len(audit) == 1 and audit[0].actor == "usuario:ana"
    assert message is not None and message.disposition == "answered"


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "sin-js"])
def test_enter_in_a_reason_field_issues_nothing(
    browser: Browser, desk: tuple[str, Database, Seeded], javascript: bool
) -> None:
    base, db, _ = desk
    context = browser.new_context(base_url=base, viewport=DESKTOP, java_script_enabled=javascript)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(tab, "ana")
    tab.goto("/bandeja?tipo=expediente")
    item = tab.locator("li.qitem-expediente").first
    case_id = int(str(item.get_attribute("id")).split("-")[1])
    before = _events(db, case_id)
    posts: list[str] = []
    tab.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    reason = item.get_by_label("Motivo")
    reason.fill("documento conforme")
    reason.press("Enter")
    bulk = tab.get_by_label("Motivo para los expedientes seleccionados")
    bulk.fill("todo conforme")
    bulk.press("Enter")
    tab.wait_for_load_state("networkidle")
    tab.goto(f"/expedientes/{case_id}")  # a later navigation: any stray POST has landed
    expect(tab.locator(".state-lg")).to_have_text("En revisión por el personal")
    assert posts == [] and dialogs == [], (posts, dialogs)
    assert _events(db, case_id) == before
    context.close()


def test_case_actions_say_what_is_sent_to_whom(
    browser: Browser, desk: tuple[str, Database, Seeded]
) -> None:
    base, db, seeded = desk
    case_id = seeded.review_case_ids[1]
    with db.session(readonly=True) as session:
        case = session.get(Case, case_id)
        assert case is not None
        email = case.applicant_email
    before = _events(db, case_id)
    context = browser.new_context(base_url=base, viewport=DESKTOP)
    context.set_default_timeout(20_000)
    page = context.new_page()
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))  # the user says no
    login(page, "ana")
    page.goto(f"/expedientes/{case_id}")
    shot(page, "volumen-expediente")
    page.locator("form.actions button[name=event]:visible").first.click()
    expect(page.locator(".state-lg")).to_have_text("En revisión por el personal")
    assert seen and "¿Confirma?" in seen[-1] and "pasará a" in seen[-1], seen
    if "Se enviará" in seen[-1]:
        assert str(email) in seen[-1]
    assert _events(db, case_id) == before  # declined: nothing happened
    context.close()


def test_case_csv_has_the_rows_of_the_filtered_list(
    page: Page, desk: tuple[str, Database, Seeded]
) -> None:
    _, db, _ = desk
    login(page, "ana")
    page.goto("/expedientes?tramite=autorizacion_viaje&estado=en_tramite")
    with db.session(readonly=True) as session:
        expected = session.scalars(
            select(Case.number).where(
                Case.tramite == "autorizacion_viaje", Case.state == "en_tramite"
            )
        ).all()
    assert len(expected) > 25  # more than one page: the CSV is not just the page shown
    expect(page.locator(".page-head p.muted")).to_contain_text(f"{len(expected)} expedientes")
    expect(page.locator("table.table thead")).to_contain_text("Quedan")
    shot(page, "volumen-expedientes")
    with page.expect_download() as info:
        page.get_by_role("link", name=f"Descargar CSV ({len(expected)})").click()
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header[0] == "Expediente" and "Días hábiles restantes" in header
    assert sorted(r[0] for r in rows) == sorted(expected)
    assert {r[header.index("Trámite")] for r in rows} == {"Autorización de Viaje"}
    assert all(r[header.index("Recibido")].count("/") == 2 for r in rows)


def test_verification_page_has_a_form(page: Page) -> None:
    response = page.goto("/verificar")
    assert response is not None and response.status == 200
    expect(page.locator("h1")).to_have_text("Verificar un documento")
    page.get_by_label("Código de verificación").fill("no es un código")
    page.get_by_role("button", name="Verificar").click()
    expect(page.locator(".bad")).to_contain_text("no tiene el formato")
    shot(page, "verificar-formulario")


def _events(db: Database, case_id: int) -> int:
    with db.session(readonly=True) as session:
        return int(session.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) or 0)


def test_closed_case_says_whether_it_was_answered_in_time(
    page: Page, desk: tuple[str, Database, Seeded]
) -> None:
    _, db, _ = desk
    with db.session(readonly=True) as session:
        closed = session.scalars(
            select(Case).where(Case.state == "archivado", Case.closed_at.is_not(None)).limit(1)
        ).one()
        case_id, due = closed.id, closed.due_date
    login(page, "ana")
    page.goto(f"/expedientes/{case_id}")
    sla = page.locator(".sla")
    expect(sla).to_contain_text("Atendido")
    expect(sla).to_contain_text(due.strftime("%d/%m/%Y") if due else "")
    expect(sla).not_to_contain_text("El plazo no corre")
    shot(page, "volumen-expediente-concluido")
