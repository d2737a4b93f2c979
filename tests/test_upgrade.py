"""Alembic upgrade from the previous schema (0002) with a real run's data in it, to head."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.db import Database
from mailflow.inbox import store_raw
from mailflow.models import Base, Case, InboxMessage, OutboxMessage, User
from mailflow.service import run_once
from mailflow.users import list_users
from tests.mail_requests import request
from tests.mailservice import write_config

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "db_0002.sql"
PREVIOUS = "0002"  # the schema the fixture's rows were written at (tests/db_fixture.py)


def _counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in Base.metadata.sorted_tables
            if conn.dialect.has_table(conn, table.name)
        }


def test_upgrade_from_previous_schema_keeps_every_row_and_the_service_goes_on(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, None, None)
    settings = load_settings(config, env={})
    settings = settings.model_copy(update={"outbox_dir": tmp_path / "enviados"})
    app = App(settings)
    db = app.database
    db.migrate(PREVIOUS)
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
        old_numbers = set(s.scalars(select(Case.number)))
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status != "sent")) == 0  # fmt: skip

    now = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    with db.session() as s:
        store_raw(s, request(99), mailbox="mesadepartes", source="smtp", now=now)
    stats = run_once(app, lambda: now)
    assert stats.errors == [] and stats.processed == 1 and stats.sent == 1
    with db.session(readonly=True) as s:
        new = s.scalars(select(Case).where(Case.number.not_in(old_numbers))).one()
        assert new.number not in old_numbers  # the case counter went on from the old data
        row = s.scalars(select(InboxMessage).order_by(InboxMessage.id.desc())).first()
        assert row is not None and row.status == "done" and row.case_id == new.id
        assert s.scalar(select(func.count()).select_from(User)) == 1
    db.dispose()
