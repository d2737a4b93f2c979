"""Login, lockout, roles on every route and CSRF of the staff desk."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from mailflow.store.db import Database
from mailflow.web.auth import MAX_FAILURES, lock_duration
from mailflow.web.users import list_users
from tests.support.web_seed import NOW, PASSWORD, build, seed_users, settings_for


@pytest.fixture
def client(sqlite_db: Database, tmp_path: Path) -> TestClient:
    seed_users(sqlite_db)
    clock = [NOW]
    web = build(settings_for(tmp_path), sqlite_db, clock)
    c = TestClient(web, follow_redirects=False)  # type: ignore[arg-type]
    c.clock = clock  # type: ignore[attr-defined]
    return c


def token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> int:
    data = {"username": username, "password": password, "csrf_token": token(client)}
    return client.post("/login", data=data).status_code


def test_login_sets_httponly_lax_cookie_and_lands_on_home(client: TestClient) -> None:
    data = {"username": "ana", "password": PASSWORD, "csrf_token": token(client)}
    response = client.post("/login", data=data)
    assert response.status_code == 303 and response.headers["location"] == "/bandeja"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "Ana Quispe" in client.get("/bandeja").text


def test_wrong_password_is_refused_with_generic_message(client: TestClient) -> None:
    assert login(client, "ana", "incorrecta-123") == 401
    assert login(client, "nadie", "incorrecta-123") == 401
    assert client.get("/bandeja").status_code == 303


def test_throttled_after_ten_failures_for_the_window_only(client: TestClient) -> None:
    for _ in range(10):
        assert login(client, "ana", "mala-clave-000") == 401
    assert login(client, "ana") == 401  # right password, but throttled
    client.clock[0] = NOW + dt.timedelta(minutes=16)  # type: ignore[attr-defined]
    assert login(client, "ana") == 303
    assert lock_duration(MAX_FAILURES) == dt.timedelta(minutes=15)
    assert lock_duration(2 * MAX_FAILURES) == dt.timedelta(minutes=15)
    assert lock_duration(7) is None


def test_login_without_csrf_token_is_403(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert response.status_code == 403


def test_every_post_route_refuses_a_missing_token(client: TestClient) -> None:
    assert login(client, "admin") == 303
    posts = [
        r.path.replace("{id:int}", "1").replace("{doc:int}", "1").replace("{username}", "ana")
        for r in client.app.routes  # type: ignore[attr-defined]
        if isinstance(r, Route) and r.methods and "POST" in r.methods
    ]
    assert "/bandeja/lote" in posts and "/expedientes/1/eventos" in posts
    for path in posts:
        assert client.post(path, data={"action": "ignorar"}).status_code == 403, path
        assert client.post(path, data={"csrf_token": "falso"}).status_code == 403, path


def test_anonymous_reaches_only_login_and_verification(client: TestClient) -> None:
    assert client.get("/login").status_code == 200
    assert client.get("/verificar/NOEXISTE").status_code == 404  # public page, not a redirect
    for path in ("/", "/bandeja", "/expedientes", "/expedientes/1", "/usuarios"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login"), path


def test_staff_cannot_reach_manager_or_admin_pages(client: TestClient) -> None:
    assert login(client, "ana") == 303
    assert client.get("/bandeja").status_code == 200
    assert client.get("/expedientes").status_code == 200
    assert client.get("/usuarios").status_code == 403
    page = client.get("/bandeja").text
    assert 'href="/usuarios"' not in page and 'href="/panel"' not in page


def test_admin_creates_and_disables_a_user(client: TestClient, sqlite_db: Database) -> None:
    assert login(client, "admin") == 303
    csrf = token(client, "/usuarios")
    data = {
        "username": "pepe",
        "full_name": "Pepe Ruiz",
        "role": "staff",
        "password": "Tres-Tigres-2026",
    }
    client.post("/usuarios", data={**data, "csrf_token": csrf})
    client.post("/usuarios/pepe/estado", data={"active": "0", "csrf_token": csrf})
    with sqlite_db.session() as session:
        users = {u.username: u for u in list_users(session)}
    assert users["pepe"].role == "staff" and not users["pepe"].active
    other = TestClient(client.app, follow_redirects=False)
    assert login(other, "pepe", "Tres-Tigres-2026") == 401


def test_logout_ends_the_session(client: TestClient) -> None:
    assert login(client, "ana") == 303
    csrf = token(client, "/bandeja")
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/bandeja").status_code == 303
