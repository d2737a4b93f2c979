"""One App per web: the service's App reaches the routes through the WebContext on app state."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request

from mailflow.app import App
from mailflow.store.db import Database
from mailflow.web import create_app
from mailflow.web.engine import app_of
from tests.support.web_seed import settings_for


def _request(web: object) -> Request:
    return Request({"type": "http", "app": web, "method": "GET", "path": "/", "headers": []})


def test_the_service_app_is_the_web_app(tmp_path: Path, sqlite_db: Database) -> None:
    app = App(settings_for(tmp_path))
    web = create_app(app.settings, sqlite_db, app=app)
    assert app_of(_request(web)) is app
    assert app_of(_request(web)) is app  # no second App built lazily on a later request


def test_without_an_app_one_is_built_on_the_web_database(
    tmp_path: Path, sqlite_db: Database
) -> None:
    web = create_app(settings_for(tmp_path), sqlite_db)
    app = app_of(_request(web))
    assert app.database is sqlite_db
    assert web.state.mailflow.app is app
