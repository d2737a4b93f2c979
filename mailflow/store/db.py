"""Database connection: engine and sessions for SQLite or PostgreSQL, migrations, row claims."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Select, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from mailflow.errors import ConfigError
from mailflow.store.filemodes import create_private_file
from mailflow.store.turnstile import Turnstile

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 30.0
MIGRATION_LOCK_KEY = 0x6D61696C666C6F77  # "mailflow": serialises concurrent migrate() on PG
_PG_DRIVERS = {"postgres", "postgresql", "postgresql+psycopg"}


def parse_url(url: str) -> URL:
    """Parse a database URL, defaulting PostgreSQL to the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database_url: la URL {url!r} no es válida ({exc})") from exc
    if parsed.drivername in _PG_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed
    raise ConfigError(
        f"database_url: el motor {parsed.drivername!r} no está soportado; use sqlite o postgresql"
    )


def alembic_config() -> Config:
    """An Alembic configuration built in code, pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see the begin hook) instead of pysqlite's implicit one.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


_TICKET = "mailflow_turnstile_ticket"


def _create_engine(url: URL, pool_size: int, echo: bool) -> Engine:
    if url.get_backend_name() == "postgresql":
        return create_engine(
            url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size * 2, echo=echo
        )
    memory = url.database in (None, "", ":memory:")
    if memory:
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            echo=echo,
        )
    else:
        create_private_file(Path(str(url.database)))  # 0600: its WAL and SHM files follow
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, echo=echo)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


class Database:
    """One database: an engine, a session factory, and the migrations that shape it.

    SQLite (embedded default): WAL, busy timeout 30 s, foreign keys on, every write transaction
    starts with BEGIN IMMEDIATE so writers queue instead of failing. PostgreSQL (production):
    a pre-pinged connection pool shared by the threads of one worker process.
    """

    def __init__(self, url: str, *, pool_size: int = 5, echo: bool = False) -> None:
        self.url = parse_url(url)
        self.engine = _create_engine(self.url, pool_size, echo)
        self.turnstile: Turnstile | None = None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "begin", self._sqlite_on_begin)
            event.listen(self.engine, "commit", self._sqlite_on_end)
            event.listen(self.engine, "rollback", self._sqlite_on_end)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(mailflow_readonly=True), expire_on_commit=False
        )

    def order_writes(self, turnstile: Turnstile | None) -> None:
        """From now on, SQLite write transactions wait for their turn at `turnstile` (shared
        with forked companions) before BEGIN IMMEDIATE; None stops that. No effect on
        PostgreSQL."""
        self.turnstile = turnstile

    def _sqlite_on_begin(self, conn: Connection) -> None:
        # Take the write lock up front: two deferred transactions that both later write would
        # otherwise fail on lock upgrade (SQLITE_BUSY without waiting) instead of queueing.
        if conn.get_execution_options().get("mailflow_readonly"):
            conn.exec_driver_sql("BEGIN")
            return
        if self.turnstile is not None:
            conn.info[_TICKET] = (self.turnstile, self.turnstile.take())
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _sqlite_on_end(self, conn: Connection) -> None:
        held = conn.info.pop(_TICKET, None)
        if held is not None:
            turnstile, ticket = held
            turnstile.done(ticket)

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Objects stay usable after commit (expire_on_commit=False). `readonly=True` only changes
        SQLite's BEGIN to a deferred one so readers do not queue behind writers.
        """
        factory = self._read_sessions if readonly else self._sessions
        with factory.begin() as session:
            yield session

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to `revision`; safe when several processes start at once."""
        cfg = alembic_config()
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at (None before the first migration)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def is_current(self) -> bool:
        """Whether the database is at the newest packaged migration."""
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        return self.current_revision() == head

    def dispose(self) -> None:
        """Close every pooled connection (call before a process exits or forks)."""
        self.engine.dispose()


def claim_rows(session: Session, stmt: Select[T]) -> Sequence[T]:
    """Run `stmt` locking the rows it returns; rows locked by other workers are skipped.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so concurrent workers get disjoint rows.
    SQLite: the statement as is; the write transaction (BEGIN IMMEDIATE) makes this the only
    writer, so mark the rows claimed in the same session before committing.
    """
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).all()


def advisory_lock(conn: Connection, key: int) -> bool:
    """Try to take a session-level advisory lock (scheduler leader election); never waits.

    PostgreSQL: pg_try_advisory_lock, held by this connection until advisory_unlock or until
    the connection closes, so keep `conn` open while leading. SQLite: always True (one host).
    """
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one())


def advisory_unlock(conn: Connection, key: int) -> bool:
    """Release a lock taken with advisory_lock; True if this connection held it."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key}).scalar_one())
