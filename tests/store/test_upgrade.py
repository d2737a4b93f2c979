"""Alembic upgrade from the previous schema (0002) with a real run's data in it, to head.

The rows (tests/fixtures/db_0002.sql, written by tests/support/db_fixture.py) are loaded into a
database migrated to 0002 — SQLite directly, PostgreSQL by copying them over — then the
database is upgraded to head: every row must still be there and load through today's models,
and the service must go on from that data (new case numbers continue the old counter).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, func, select, text

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.runners.inbox import store_raw
from mailflow.runners.service import run_once
from mailflow.store.db import Database
from mailflow.store.models import Base, Case, InboxMessage, OutboxMessage, User
from mailflow.web.users import list_users
from tests.support.fixtures_db import fresh_pg_database
from tests.support.mail_requests import request
from tests.support.mailservice import write_config

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "db_0002.sql"
PREVIOUS = "0002"  # the schema the fixture's rows were written at (tests/support/db_fixture.py)


def _load_fixture(db: Database) -> None:
    """Run the fixture's INSERTs on a SQLite database at PREVIOUS; foreign keys checked after."""
    raw = db.engine.raw_connection()
    try:
        sqlite = raw.driver_connection
        assert sqlite is not None
        # The dump lists tables alphabetically: check foreign keys after loading, not per row.
        sqlite.execute("PRAGMA foreign_keys=OFF")
        sqlite.executescript("BEGIN;\n" + FIXTURE.read_text(encoding="utf-8") + "COMMIT;")
        assert sqlite.execute("PRAGMA foreign_key_check").fetchall() == []
        sqlite.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()


def _copy_rows(source: Engine, target: Engine) -> None:
    """Copy every data row from `source` to `target` (same schema), then reset id sequences."""
    src, dst = MetaData(), MetaData()
    src.reflect(source)
    dst.reflect(target)
    with source.connect() as read, target.begin() as write:
        for table in dst.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = [dict(r._mapping) for r in read.execute(select(src.tables[table.name]))]
            for row in rows:  # SQLite keeps UTC instants without their offset
                for key, value in row.items():
                    if isinstance(value, dt.datetime) and value.tzinfo is None:
                        row[key] = value.replace(tzinfo=dt.UTC)
            if rows:
                write.execute(table.insert(), rows)
            if "id" in table.c and rows:
                write.execute(
                    text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :n)"),
                    {"t": table.name, "n": max(r["id"] for r in rows)},
                )


@contextlib.contextmanager
def _database_at_previous(kind: str, tmp_path: Path) -> Iterator[str]:
    """A database URL at schema PREVIOUS holding the fixture's rows."""
    sqlite_url = f"sqlite:///{tmp_path / 'previous.db'}"
    scratch = Database(sqlite_url)
    scratch.migrate(PREVIOUS)
    _load_fixture(scratch)
    if kind == "sqlite":
        scratch.dispose()
        yield sqlite_url
        return
    with fresh_pg_database("mailflow_upgrade") as url:
        pg = Database(url)
        with pg.engine.begin() as conn:  # fresh_pg_database migrates to head: start again
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        pg.migrate(PREVIOUS)
        _copy_rows(scratch.engine, pg.engine)
        pg.dispose()
        scratch.dispose()
        yield url


def _counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in Base.metadata.sorted_tables
            if conn.dialect.has_table(conn, table.name)
        }


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_from_previous_schema_keeps_every_row_and_the_service_goes_on(
    tmp_path: Path, kind: str
) -> None:
    with _database_at_previous(kind, tmp_path) as url:
        config = write_config(tmp_path, None, None)
        settings = load_settings(config, env={}).model_copy(
            update={"outbox_dir": tmp_path / "enviados", "database_url": url}
        )
        app = App(settings)
        db = app.database
        assert db.current_revision() == PREVIOUS
        before = _counts(db)
        assert (before["cases"], before["inbox_messages"], before["documents"]) == (18, 20, 1)
        assert before["users"] == 1

        db.migrate()
        assert db.is_current()
        after = _counts(db)
        assert {k: after[k] for k in before} == before  # nothing lost by the upgrade
        with db.session(readonly=True) as s:
            for mapper in Base.registry.mappers:  # every row loads through today's models
                s.scalars(select(mapper.class_)).all()
            assert [u.username for u in list_users(s)] == ["mesa"]
            cases = s.scalars(select(Case)).all()
            assert all(isinstance(c.fields, dict) and c.received_at.tzinfo for c in cases)
            old_numbers = {c.number for c in cases}
            unsent = select(func.count()).select_from(OutboxMessage)
            assert s.scalar(unsent.where(OutboxMessage.status != "sent")) == 0

        now = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
        with db.session() as s:
            store_raw(s, request(99), mailbox="mesadepartes", source="smtp", now=now)
        stats = run_once(app, lambda: now)
        assert stats.errors == [] and stats.processed == 1 and stats.sent == 1
        with db.session(readonly=True) as s:
            new = s.scalars(select(Case).where(Case.number.not_in(old_numbers))).one()
            row = s.scalars(select(InboxMessage).order_by(InboxMessage.id.desc())).first()
            assert row is not None and row.status == "done" and row.case_id == new.id
            assert s.scalar(select(func.count()).select_from(User)) == 1
        db.dispose()
