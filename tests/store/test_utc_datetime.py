"""UtcDateTime on SQLite: its one-step bind and read give exactly SQLAlchemy's DATETIME text
and values (rows written before and after the fast path read the same), and naive values
are still refused."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import DateTime

from mailflow.store.models import UtcDateTime

DIALECT = sqlite.dialect()


def _instants(n: int) -> list[dt.datetime]:
    rnd = random.Random(7)
    out = []
    while len(out) < n:
        zone = dt.timezone(dt.timedelta(minutes=rnd.randint(-720, 720)))
        micro = rnd.choice([0, rnd.randint(0, 999_999)])
        value = dt.datetime(
            rnd.randint(2, 9998), rnd.randint(1, 12), rnd.randint(1, 28),
            rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59), micro, tzinfo=zone,
        )  # fmt: skip
        out.append(value)
    return out


def test_bind_and_read_match_sqlalchemys_datetime_text() -> None:
    ours = UtcDateTime().dialect_impl(DIALECT)
    usual = DateTime(timezone=True).dialect_impl(DIALECT)
    bind, usual_bind = ours.bind_processor(DIALECT), usual.bind_processor(DIALECT)
    read, usual_read = ours.result_processor(DIALECT, None), usual.result_processor(DIALECT, None)
    assert bind and usual_bind and read and usual_read
    for value in _instants(20_000):
        utc = value.astimezone(dt.UTC)
        text = bind(value)
        assert text == usual_bind(utc.replace(tzinfo=None))
        assert read(text) == usual_read(text).replace(tzinfo=dt.UTC) == utc
    assert bind(None) is None and read(None) is None
    # text written by other hands (no microseconds, a date alone) reads as before
    for text in ("2026-01-02 03:04:05", "2026-01-02", "2026-01-02 03:04:05.5"):
        assert read(text) == usual_read(text).replace(tzinfo=dt.UTC)


def test_naive_values_are_refused_and_rows_round_trip() -> None:
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UtcDateTime)
    )
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    lima = dt.timezone(dt.timedelta(hours=-5))
    with engine.begin() as conn:
        conn.execute(insert(table), [{"at": v} for v in _instants(50)])
        conn.execute(insert(table), {"at": dt.datetime(2026, 11, 30, 9, 0, tzinfo=lima)})
        rows = conn.execute(select(table.c.at).order_by(table.c.id)).scalars().all()
        later = conn.execute(
            select(table.c.id).where(table.c.at >= dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC))
        ).scalars()
        assert list(later)  # comparisons bind the same text
        with pytest.raises(Exception, match="naive datetime"):
            conn.execute(insert(table), {"at": dt.datetime(2026, 11, 30, 9, 0)})
    assert rows[:50] == [v.astimezone(dt.UTC) for v in _instants(50)]
    assert rows[50] == dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
    assert all(r.tzinfo is dt.UTC for r in rows)
