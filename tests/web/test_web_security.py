"""Web desk hardening: login throttling, one failure message, revocable sessions, body limit,
huge ids in URLs (issue 14, items 4, 5 and 9)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from mailflow.store.db import Database
from mailflow.web import create_app
from mailflow.web.auth import FAILED, MAX_FAILURES, lock_duration
from mailflow.web.middleware import HEADERS
from mailflow.web.throttle import LoginThrottle, Refusal, SlidingWindow
from mailflow.web.users import find_user, set_active, set_password
from tests.support.web_seed import NOW, PASSWORD, build, seed_users, settings_for

WRONG = "mala-clave-000"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def web(sqlite_db: Database, tmp_path: Path) -> object:
    seed_users(sqlite_db)
    clock = [NOW]
    app = build(settings_for(tmp_path), sqlite_db, clock)
    app.clock = clock  # type: ignore[attr-defined]
    return app


def client_of(web: object, host: str = "198.51.100.7") -> TestClient:
    return TestClient(web, follow_redirects=False, client=(host, 50000))  # type: ignore[arg-type]


def token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def attempt(client: TestClient, username: str, password: str = PASSWORD) -> tuple[int, str]:
    data = {"username": username, "password": password, "csrf_token": token(client)}
    response = client.post("/login", data=data)
    return response.status_code, response.text


def advance(web: object, **delta: float) -> None:
    web.clock[0] += dt.timedelta(**delta)  # type: ignore[attr-defined]


def _error(page: str) -> str:
    found = re.search(r'class="[^"]*(?:error|alert)[^"]*"[^>]*>(.*?)<', page, re.S)
    return found.group(1).strip() if found else ""


# -- item 4: one message, throttle instead of long locks ------------------------------------------


def test_wrong_user_wrong_password_and_throttled_account_look_the_same(web: object) -> None:
    c = client_of(web)
    answers = [attempt(c, "ana", WRONG), attempt(c, "nadie", WRONG)]
    for _ in range(12):  # past the per-account limit: ana is now refused unchecked
        attempt(client_of(web, f"203.0.113.{_}"), "ana", WRONG)
    answers.append(attempt(client_of(web, "192.0.2.200"), "ana", PASSWORD))
    for status, page in answers:
        assert status == 401
        assert FAILED in page.replace("&#39;", "'")
    assert "bloqueada" not in answers[-1][1]


def test_a_guesser_slows_an_account_for_minutes_not_hours(web: object, sqlite_db: Database) -> None:
    for n in range(60):  # many addresses, many guesses
        attempt(client_of(web, f"203.0.113.{n % 50}"), "ana", WRONG)
    assert attempt(client_of(web, "192.0.2.1"), "ana")[0] == 401  # throttled for now
    advance(web, minutes=16)  # the window has passed: the right password works again
    assert attempt(client_of(web, "192.0.2.1"), "ana")[0] == 303
    with sqlite_db.session(readonly=True) as session:
        user = find_user(session, "ana")
        assert user is not None and user.failed_logins == 0 and user.locked_until is None


def test_one_address_is_throttled_for_every_account(web: object) -> None:
    c = client_of(web, "198.51.100.99")
    for n in range(20):
        assert attempt(c, f"usuario{n}", WRONG)[0] == 401
    status, page = attempt(c, "ana")  # right password, but from the guessing address
    assert status == 429 and "desde esta conexión" in page
    assert attempt(client_of(web, "192.0.2.50"), "ana")[0] == 303  # others are not affected
    advance(web, minutes=16)
    assert attempt(c, "ana")[0] == 303


def test_database_lock_is_short_and_only_after_many_failures() -> None:
    assert lock_duration(MAX_FAILURES - 1) is None
    assert lock_duration(MAX_FAILURES) == dt.timedelta(minutes=15)
    assert lock_duration(MAX_FAILURES * 10) == dt.timedelta(minutes=15)  # never hours
    assert MAX_FAILURES >= 10


def test_database_lock_answers_with_the_generic_message(web: object, sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        user = find_user(session, "ana")
        assert user is not None
        user.failed_logins = MAX_FAILURES
        user.locked_until = NOW + dt.timedelta(minutes=15)
    status, page = attempt(client_of(web), "ana")
    assert status == 401 and FAILED in page.replace("&#39;", "'") and "hasta las" not in page
    advance(web, minutes=16)
    assert attempt(client_of(web), "ana")[0] == 303


def test_sliding_window_forgets_old_failures() -> None:
    window = SlidingWindow(limit=3, window_s=60)
    for at in (0, 10, 20):
        window.add("k", at)
    assert window.full("k", 30) and not window.full("k", 61)
    throttle = LoginThrottle(per_address=100, per_account=2, window_s=60)
    throttle.failed("a", "ana", 0)
    throttle.failed("b", "ana", 1)
    assert throttle.refused("c", "ana", 2) is Refusal.ACCOUNT
    assert throttle.refused("c", "otra", 2) is None
    throttle.succeeded("ana")
    assert throttle.refused("c", "ana", 3) is None


# -- item 5: sessions revoked server-side ---------------------------------------------------------


def _cookie(c: TestClient) -> str:
    value = c.cookies.get("mailflow_sesion")
    assert value
    return value


def test_cookie_captured_before_logout_is_refused_after_it(web: object) -> None:
    c = client_of(web)
    assert attempt(c, "ana")[0] == 303
    stolen = _cookie(c)
    assert c.get("/bandeja").status_code == 200
    assert c.post("/logout", data={"csrf_token": token(c, "/bandeja")}).status_code == 303
    thief = client_of(web, "203.0.113.66")
    thief.cookies.set("mailflow_sesion", stolen)
    response = thief.get("/bandeja")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_password_change_refuses_the_old_cookie(web: object, sqlite_db: Database) -> None:
    c = client_of(web)
    assert attempt(c, "ana")[0] == 303
    old = _cookie(c)
    with sqlite_db.session() as session:
        set_password(session, "ana", "otra-clave-segura-456")
    thief = client_of(web, "203.0.113.67")
    thief.cookies.set("mailflow_sesion", old)
    assert thief.get("/bandeja").status_code == 303
    assert attempt(client_of(web), "ana", "otra-clave-segura-456")[0] == 303


def test_disabled_account_stays_out_after_it_is_enabled_again(
    web: object, sqlite_db: Database
) -> None:
    c = client_of(web)
    assert attempt(c, "ana")[0] == 303
    before = _cookie(c)
    with sqlite_db.session() as session:
        set_active(session, "ana", False)
    assert c.get("/bandeja").status_code == 303
    with sqlite_db.session() as session:
        set_active(session, "ana", True)
    old = client_of(web, "203.0.113.68")
    old.cookies.set("mailflow_sesion", before)
    assert old.get("/bandeja").status_code == 303


# -- item 9: request body limit, huge ids ---------------------------------------------------------


def _has_security_headers(response: object) -> bool:
    headers = response.headers  # type: ignore[attr-defined]
    return all(headers.get(name.decode()) == value.decode() for name, value in HEADERS)


def test_large_anonymous_post_is_refused_before_it_is_read(web: object) -> None:
    c = client_of(web)
    body = b"x" * (2 * 1024 * 1024)
    response = c.post("/login", content=body, headers=FORM)
    assert response.status_code == 413 and "demasiado grande" in response.text
    assert _has_security_headers(response)

    def chunks() -> object:  # no Content-Length: counted while streamed
        for _ in range(64):
            yield b"y" * 65536

    response = c.post("/login", content=chunks(), headers=FORM)
    assert response.status_code == 413 and _has_security_headers(response)


def test_upload_route_has_its_own_larger_limit(sqlite_db: Database, tmp_path: Path) -> None:
    seed_users(sqlite_db)
    settings = settings_for(tmp_path)
    small = settings.model_copy(
        update={"web": settings.web.model_copy(update={"max_body_bytes": 4096})}
    )
    c = TestClient(create_app(small, sqlite_db), follow_redirects=False)
    assert attempt(c, "admin")[0] == 303
    sheet = b"nombre,documento\n" + b"Ana Perez,12345678\n" * 2000  # ~40 KB
    files = {"archivo": ("personas.csv", sheet, "text/csv")}
    data = {"csrf_token": token(c, "/registro")}
    response = c.post("/registro/subir", data=data, files=files)
    assert response.status_code == 200 and "Ana Perez" in response.text
    assert c.post("/usuarios", data={**data, "full_name": "x" * 8000}).status_code == 413


def test_huge_numbers_in_urls_are_404_with_security_headers(web: object) -> None:
    c = client_of(web)
    assert attempt(c, "admin")[0] == 303
    for path in (
        "/expedientes/999999999999999999999999",
        "/expedientes/9223372036854775808",
        "/expedientes/1/documentos/99999999999999999999999999999999",
        "/expedientes/" + "9" * 5000,
        "/verificar/" + "1" * 40,
    ):
        response = c.get(path)
        assert response.status_code == 404, path
        assert _has_security_headers(response), path
    assert c.get("/expedientes/9223372036854775807").status_code == 404  # largest id: not found
    for path in (
        "/expedientes?pagina=99999999999999999999999",
        "/expedientes?pagina=" + "9" * 5000,
    ):
        response = c.get(path)
        assert response.status_code == 400 and "fuera de rango" in response.text, path
        assert _has_security_headers(response), path
    assert c.get("/expedientes?pagina=2").status_code == 200
    form = {
        "csrf_token": token(c, "/bandeja"),
        "ids": "99999999999999999999999",
        "action": "ignorar",
    }
    response = c.post("/bandeja/lote", data=form)  # a number too large in a form field
    assert response.status_code == 400 and _has_security_headers(response)
    routes = [r.path for r in c.app.routes if isinstance(r, Route)]  # type: ignore[attr-defined]
    assert "/expedientes/{id:int}" in routes


def test_unexpected_error_page_still_has_security_headers(
    sqlite_db: Database, tmp_path: Path
) -> None:
    def boom(context: object) -> list[Route]:
        async def fail(request: object) -> None:
            raise RuntimeError("fallo de prueba")

        return [Route("/fallo", fail)]

    app = create_app(settings_for(tmp_path), sqlite_db, [boom])
    c = TestClient(app, raise_server_exceptions=False)
    response = c.get("/fallo")
    assert response.status_code == 500 and _has_security_headers(response)
