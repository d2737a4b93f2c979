"""Gap-free yearly correlatives (expediente, oficio ...) taken inside the caller's transaction."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mailflow.models import Counter

_COUNTERS = cast(Table, Counter.__table__)


def next_number(session: Session, name: str, year: int) -> int:
    """Take the next number of counter `name` for `year` (1, 2, 3 ...), in `session`'s transaction.

    One atomic upsert: INSERT (name, year, 1) ON CONFLICT DO UPDATE SET value = value + 1
    RETURNING value. The counter row stays locked until the transaction ends (PostgreSQL row
    lock; SQLite's BEGIN IMMEDIATE write lock), so concurrent workers queue on it and a rolled
    back transaction takes its increment with it: no gaps, no duplicates. Call it as late as
    possible in the transaction, since it serialises every other taker of the same counter.
    """
    key = [_COUNTERS.c.name, _COUNTERS.c.year]
    bump = {"value": _COUNTERS.c.value + 1}
    stmt: Insert
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(_COUNTERS).values(name=name, year=year, value=1)
        stmt = pg.on_conflict_do_update(index_elements=key, set_=bump)
    else:
        lite = sqlite.insert(_COUNTERS).values(name=name, year=year, value=1)
        stmt = lite.on_conflict_do_update(index_elements=key, set_=bump)
    return int(session.execute(stmt.returning(_COUNTERS.c.value)).scalar_one())


def format_expediente(year: int, seq: int) -> str:
    """The case number people see: format_expediente(2026, 123) == "EXP-2026-000123"."""
    return f"EXP-{year:04d}-{seq:06d}"
