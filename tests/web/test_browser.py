"""End-to-end tests of the staff desk in headless Chromium (Playwright) against a live server."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, expect, sync_playwright
from sqlalchemy import select

from mailflow.app import App
from mailflow.store.db import Database
from mailflow.store.models import Case
from mailflow.web.engine import fire
from tests.support.waiting import GENEROUS_SECONDS
from tests.support.web_seed import (
    NOW,
    PASSWORD,
    ROOT,
    SPAM,
    UNCLASSIFIED,
    build,
    seed_users,
    settings_for,
)
from tests.support.web_seed import store as store_message

SHOTS = ROOT / "out" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = ViewportSize(width=1366, height=900)
PHONE = ViewportSize(width=390, height=844)
FORWARD = ["admitir", "resolver", "archivar"]  # the staff path to a final state
SAMPLES = ["01_actualizacion_datos", "02_cambio_clave", "05_renuncia", "10_incompleto"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(db: Database, app: App) -> None:
    seed_users(db)
    store_message(db, app, UNCLASSIFIED, 1)
    store_message(db, app, SPAM, 2)
    for uid, name in enumerate(SAMPLES, start=10):
        store_message(db, app, (ROOT / "samples" / f"{name}.eml").read_bytes(), uid)
    with db.session() as session:  # one case already answered, so the panel has figures
        case = session.scalars(select(Case).where(Case.state == "en_tramite")).first()
        assert case is not None
        fire(session, app, case, "resolver", actor="usuario:ana", now=NOW, reason="atendido")


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in this thread
# while it is open, and code that calls asyncio.run() (pyhanko's sync API) would fail in the
# tests that run after these in the same worker.
@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live desk (uvicorn in a thread) on a fresh, seeded SQLite database."""
    tmp = tmp_path_factory.mktemp("browser")
    db = Database(f"sqlite:///{tmp / 'mailflow.db'}")
    db.migrate()
    web = build(settings_for(tmp), db, [NOW + dt.timedelta(hours=2)])
    _seed(db, web.state.mailflow.app)  # type: ignore[attr-defined]
    port = _free_port()
    config = uvicorn.Config(web, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + GENEROUS_SECONDS
    while not server.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)
    db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        yield _launch(p)


def _launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser context (no cookies) at desktop size; dialogs are accepted."""
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, locale="es-PE")
    context.set_default_timeout(30_000)  # ms per browser step: generous on a busy machine
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()


def login(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    expect(page.locator(".who-name")).to_be_visible()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_login_page_and_bad_password(page: Page) -> None:
    page.goto("/login")
    shot(page, "login")
    page.get_by_label("Usuario").fill("ana")
    page.get_by_label("Contraseña").fill("no-es-la-clave")
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert page.url.endswith("/login")
    login(page, "ana")
    expect(page.locator(".who-name")).to_contain_text("Ana Quispe")


def test_classify_message_then_move_case_to_a_final_state(page: Page) -> None:
    login(page, "ana")
    page.goto("/bandeja")
    item = page.locator("li.qitem-mensaje", has_text="consulta urgente")
    expect(item).to_contain_text("Motivo:")
    shot(page, "bandeja")
    item.get_by_label("Trámite", exact=True).select_option("actualizacion_datos")
    item.get_by_role("button", name="Clasificar").click()
    expect(page.locator(".flash")).to_be_visible()
    expect(page.locator("li.qitem-mensaje", has_text="consulta urgente")).to_have_count(0)

    page.goto("/expedientes?q=Maria+Perez+Gomez")
    page.locator("table.table a.mono").first.click()
    expect(page.locator("h1.mono")).to_be_visible()
    seen = [page.locator(".state-lg").inner_text()]
    shot(page, "expediente-acciones")
    for _ in range(6):
        events = page.locator("form.actions button[name=event]")
        offered = [events.nth(i).get_attribute("value") for i in range(events.count())]
        if not offered:
            break
        event = next((e for e in FORWARD if e in offered), offered[0])
        page.get_by_label("Motivo u observación").fill(f"revisado por ana, paso {len(seen)}")
        page.locator(f"form.actions button[value={event}]").click()
        expect(page.locator(".state-lg")).not_to_have_text(seen[-1])
        seen.append(page.locator(".state-lg").inner_text())
    expect(page.get_by_text("Expediente concluido: no admite más acciones.")).to_be_visible()
    assert len(seen) >= 3, seen
    timeline = page.locator("ol.timeline")
    expect(timeline.locator(".actor", has_text="Ana Quispe").first).to_be_visible()
    expect(timeline).to_contain_text("revisado por ana")
    shot(page, "expediente")


def test_queue_and_case_list_screens(page: Page) -> None:
    login(page, "ana")
    page.get_by_role("link", name="Expedientes", exact=True).click()
    expect(page.locator("table.table tbody tr").first).to_be_visible()
    shot(page, "expedientes")
    answered = page.locator("table.table tbody tr", has=page.locator(".state", has_text="Resuelto"))
    expect(answered.locator(".badge")).to_have_text("Concluido")  # the clock stopped
    page.set_viewport_size(PHONE)
    page.get_by_role("link", name="Bandeja de excepciones").click()
    expect(page.locator("h1")).to_have_text("Bandeja de excepciones")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the queue scrolls sideways on a phone ({width}px)"
    shot(page, "bandeja-movil")


def test_manager_sees_dashboard_and_downloads_report(page: Page) -> None:
    login(page, "jefa")
    page.get_by_role("link", name="Panel").click()
    expect(page.locator("h1")).to_have_text("Panel de plazos")
    shot(page, "panel")
    with page.expect_download() as info:
        page.get_by_role("link", name="Exportar CSV").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    header, *rows = text.splitlines()
    assert header.split(",")[:2] == ["tramite", "procedimiento"]
    on_panel = page.locator("table.table tbody td.strong").all_inner_texts()
    in_report = {row.split(",")[1] for row in rows}
    assert on_panel, "the seeded answered case should appear on the panel"
    assert set(on_panel) <= in_report, (on_panel, rows)


def test_admin_manages_users(page: Page) -> None:
    login(page, "admin")
    page.get_by_role("link", name="Usuarios").click()
    expect(page.locator("table.table")).to_contain_text("Rosa Salas")
    shot(page, "usuarios")


def test_staff_cannot_open_manager_or_admin_pages(page: Page) -> None:
    login(page, "ana")
    expect(page.get_by_role("link", name="Panel")).to_have_count(0)
    expect(page.get_by_role("link", name="Usuarios")).to_have_count(0)
    for path in ["/panel", "/reportes/sla.csv", "/usuarios"]:
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.locator("h1")).to_have_text("Acceso denegado")
    shot(page, "403")


def test_anonymous_reaches_only_login_and_verification(page: Page) -> None:
    for path in ["/bandeja", "/expedientes", "/panel", "/usuarios"]:
        page.goto(path)
        assert "/login" in page.url, path
        expect(page.get_by_role("button", name="Entrar")).to_be_visible()
    response = page.goto("/verificar/XXXX-0000")
    assert response is not None and response.status == 404
    assert page.url.endswith("/verificar/XXXX-0000")
    expect(page.locator("h1")).to_have_text("Documento no válido")
    shot(page, "verificar")


def test_form_without_csrf_token_is_refused(page: Page) -> None:
    login(page, "ana")
    page.goto("/bandeja")
    item = page.locator("li.qitem").first
    item_id = item.get_attribute("id")
    item.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        item.locator("button:visible").first.click()
    assert info.value.status == 403
    expect(page.locator("h1")).to_have_text("Acceso denegado")
    expect(page.locator("main")).to_contain_text("vuelva a cargar la página")
    page.goto("/bandeja")
    expect(page.locator(f"li#{item_id}")).to_have_count(1)
