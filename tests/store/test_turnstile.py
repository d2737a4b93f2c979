"""SQLite writers of one run take turns (store/turnstile.py): a companion's write waits for
the engine's current transaction, not for the engine to stop writing."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import text

from mailflow.store.db import Database
from mailflow.store.turnstile import Turnstile
from tests.support.waiting import GENEROUS_SECONDS

HOLD_SECONDS = 0.1  # the "engine": one write transaction after the other, each this long
WRITES = 5


def _writer_and_companion(path: Path, turnstile: Turnstile | None) -> tuple[int, float]:
    """The parent writes back to back until the forked companion has made WRITES writes (or
    GENEROUS_SECONDS pass); returns (companion writes, seconds the parent kept writing)."""
    db = Database(f"sqlite:///{path}")
    with db.session() as s:
        s.execute(text("CREATE TABLE t (who TEXT)"))
    db.order_writes(turnstile)
    pid = os.fork()
    if pid == 0:  # the companion
        status = 1
        try:
            db.engine.dispose(close=False)
            for _ in range(WRITES):
                time.sleep(HOLD_SECONDS / 2)
                with db.session() as s:
                    s.execute(text("INSERT INTO t VALUES ('companion')"))
            status = 0
        finally:
            os._exit(status)
    started = time.monotonic()
    try:
        while time.monotonic() - started < GENEROUS_SECONDS:
            with db.session() as s:
                s.execute(text("INSERT INTO t VALUES ('engine')"))
                time.sleep(HOLD_SECONDS)
            if os.waitpid(pid, os.WNOHANG)[0] != 0:
                pid = 0
                break
    finally:
        if pid:
            os.waitpid(pid, 0)
    took = time.monotonic() - started
    with db.session(readonly=True) as s:
        done = s.scalar(text("SELECT count(*) FROM t WHERE who = 'companion'"))
    db.dispose()
    return int(done or 0), took


def test_a_companion_writes_between_the_engines_transactions(tmp_path: Path) -> None:
    done, took = _writer_and_companion(tmp_path / "t.db", Turnstile(GENEROUS_SECONDS))
    assert done == WRITES
    assert took < GENEROUS_SECONDS / 2  # the companion finished while the engine kept writing


def test_a_turn_that_never_comes_is_not_waited_for_forever(tmp_path: Path) -> None:
    turnstile = Turnstile(0.2)
    turnstile.take()  # a ticket never given back (a transaction left open, a process gone)
    db = Database(f"sqlite:///{tmp_path / 'u.db'}")
    db.order_writes(turnstile)
    started = time.monotonic()
    with db.session() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    assert time.monotonic() - started >= 0.2  # it waited for its turn, then began anyway
    db.dispose()


def test_readonly_transactions_take_no_ticket(tmp_path: Path) -> None:
    turnstile = Turnstile(GENEROUS_SECONDS)
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    db.order_writes(turnstile)
    with db.session(readonly=True) as s:
        s.execute(text("SELECT 1"))
    assert turnstile.take() == 0  # the first ticket ever handed out
    db.dispose()
