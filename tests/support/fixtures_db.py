"""Database fixtures (SQLite and PostgreSQL).

- `sqlite_db`: a migrated Database on a fresh SQLite file (copied from a template migrated once).
- `pg_url`: URL of a fresh PostgreSQL database created and migrated once per test session, dropped
  at the end (`mailflow_test_<pid>_<random>`; one per xdist worker).
- `pg_db`: a Database on `pg_url` with every table emptied before the test.
- `any_db`: runs the test once on each (`any_db[sqlite]`, `any_db[postgresql]`).

PostgreSQL is expected at MAILFLOW_TEST_PG (default postgresql+psycopg://postgres@127.0.0.1:5432);
if it cannot be reached the fixture fails with a clear message (never skips).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from mailflow.store.db import Database
from mailflow.store.models import Base

PG_SERVER = os.environ.get("MAILFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


def _admin_dsn() -> str:
    return PG_SERVER.replace("postgresql+psycopg://", "postgresql://", 1) + "/postgres"


def _admin(statement: sql.Composable) -> None:
    try:
        with psycopg.connect(_admin_dsn(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_SERVER} ({exc}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or point MAILFLOW_TEST_PG at a server.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "mailflow.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()  # last connection closes: WAL checkpointed, the file alone holds everything
    return path


@pytest.fixture
def sqlite_db(_sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "mailflow.db"
    shutil.copyfile(_sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "mailflow_test") -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for the block (dropped afterwards); its URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{PG_SERVER}/{name}"
    try:
        db = Database(url)
        db.migrate()
        db.dispose()
        yield url
    finally:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest) -> Database:
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    db: Database = request.getfixturevalue(fixture)
    return db
