"""Gap-free yearly correlatives (expediente, oficio ...) taken inside the caller's transaction."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailflow.store.models import Counter

_COUNTERS = cast(Table, Counter.__table__)


def next_number(session: Session, name: str, year: int) -> int:
    """Take the next number of counter `name` for `year` (1, 2, 3 ...), in `session`'s transaction.

    One atomic upsert: INSERT (name, year, 1) ON CONFLICT DO UPDATE SET value = value + 1
    RETURNING value. The counter row stays locked until the transaction ends (PostgreSQL row
    lock; SQLite's BEGIN IMMEDIATE write lock), so concurrent workers queue on it and a rolled
    back transaction takes its increment with it: no gaps, no duplicates. Call it as late as
    possible in the transaction, since it serialises every other taker of the same counter.
    """
    lite = session.get_bind().dialect.name != "postgresql"
    values = {"name": name, "year": year, "value": 1}
    # straight on the connection: the counter is no ORM object, nothing pending concerns it
    return int(
        session.connection().execute(_BUMP_SQLITE if lite else _BUMP_PG, values).scalar_one()
    )


def _bump(insert_: type[sqlite.Insert] | type[postgresql.Insert]) -> Insert:
    """INSERT (name, year, value) ON CONFLICT (name, year) DO UPDATE SET value = value + 1
    RETURNING value, for one dialect (the values are bound at execution)."""
    stmt = insert_(_COUNTERS).on_conflict_do_update(
        index_elements=[_COUNTERS.c.name, _COUNTERS.c.year],
        set_={"value": _COUNTERS.c.value + 1},
    )
    return stmt.returning(_COUNTERS.c.value)


_BUMP_SQLITE = _bump(sqlite.Insert)
_BUMP_PG = _bump(postgresql.Insert)


def format_expediente(year: int, seq: int) -> str:
    """The case number people see: format_expediente(2026, 123) == "EXP-2026-000123"."""
    return f"EXP-{year:04d}-{seq:06d}"
