"""Alembic environment: migrates the connection handed over by Database.migrate().

Run programmatically (see mailflow.store.db.Database.migrate). From the alembic command line, pass
the URL with `-x url=...` or MAILFLOW_DATABASE_URL, e.g. to autogenerate a new revision.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from mailflow.store.db import Database
from mailflow.store.models import Base, UtcDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(kind: str, obj: Any, _ctx: Any) -> str | Literal[False]:
    # Migrations stay frozen: render model-level types as plain SQLAlchemy ones.
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "MAILFLOW_DATABASE_URL"
    )
    if not url:
        raise SystemExit(
            "migraciones de mailflow: indique la base de datos con -x url=... o MAILFLOW_DATABASE_URL"
        )
    return url


def run() -> None:
    """Run the migrations: on the connection Alembic was given (config.attributes['connection']),
    offline as SQL, or online on the URL from -x url=… / MAILFLOW_DATABASE_URL. Raises SystemExit
    when no URL is given.
    """
    conn = config.attributes.get("connection")
    if conn is not None:
        _configure(conn)
        return
    if context.is_offline_mode():
        context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    db = Database(_url())
    try:
        with db.engine.begin() as conn:
            _configure(conn)
    finally:
        db.dispose()


run()
