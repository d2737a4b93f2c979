"""Gap-free yearly correlatives, including under concurrent worker processes."""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailflow.store.db import Database
from mailflow.store.models import Counter
from mailflow.store.numbering import format_expediente, next_number


class _Rollback(Exception):
    pass


def test_format_expediente() -> None:
    assert format_expediente(2026, 123) == "EXP-2026-000123"
    assert format_expediente(2027, 1) == "EXP-2027-000001"


def test_numbers_count_per_name_and_year(any_db: Database) -> None:
    with any_db.session() as s:
        taken = [next_number(s, "expediente", 2026) for _ in range(3)]
        taken += [next_number(s, "oficio", 2026), next_number(s, "expediente", 2027)]
    assert taken == [1, 2, 3, 1, 1]
    with any_db.session(readonly=True) as s:
        assert s.get_one(Counter, ("expediente", 2026)).value == 3


def test_a_rolled_back_number_is_given_again(any_db: Database) -> None:
    with any_db.session() as s:
        assert next_number(s, "expediente", 2026) == 1
    try:
        with any_db.session() as s:
            assert next_number(s, "expediente", 2026) == 2
            raise _Rollback
    except _Rollback:
        pass
    with any_db.session() as s:
        assert next_number(s, "expediente", 2026) == 2


def test_a_waiting_worker_gets_the_number_a_rolled_back_one_released(pg_db: Database) -> None:
    got: queue.Queue[int] = queue.Queue()
    with pg_db.session() as s:
        next_number(s, "expediente", 2026)  # the row exists: the waiter blocks on its lock

    def waiter() -> None:
        with pg_db.session() as s2:
            got.put(next_number(s2, "expediente", 2026))

    try:
        with pg_db.session() as s:
            assert next_number(s, "expediente", 2026) == 2
            thread = threading.Thread(target=waiter)
            thread.start()
            thread.join(0.3)
            assert thread.is_alive() and got.empty()  # blocked on the counter row
            raise _Rollback
    except _Rollback:
        pass
    thread.join(10)
    assert got.get(timeout=1) == 2


def _worker(url: str, count: int, barrier: Any, results: Any) -> None:
    db = Database(url)
    committed: list[int] = []
    with db.engine.connect():
        pass  # connect before the start line so every worker really races
    barrier.wait(30)
    attempt = 0
    while len(committed) < count:
        attempt += 1
        try:
            with db.session() as s:
                number = next_number(s, "expediente", 2026)
                if attempt % 5 == 0:
                    raise _Rollback
        except _Rollback:
            continue
        committed.append(number)
    db.dispose()
    results.put(committed)


def _race(url: str, processes: int, count: int) -> list[int]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(url, count, barrier, results)) for _ in range(processes)
    ]
    for w in workers:
        w.start()
    numbers: list[int] = []
    received = 0
    deadline = time.monotonic() + 60
    while received < processes:
        crashed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
        assert not crashed, f"a worker crashed (exit codes {crashed})"
        assert time.monotonic() < deadline, "workers did not finish in 60 s"
        try:
            numbers += results.get(timeout=0.2)
            received += 1
        except queue.Empty:
            continue
    for w in workers:
        w.join(10)
        assert w.exitcode == 0
    return numbers


def test_four_postgres_workers_share_one_sequence_without_gaps(pg_db: Database) -> None:
    numbers = _race(pg_db.engine.url.render_as_string(hide_password=False), 4, 50)
    assert sorted(numbers) == list(range(1, 201))
    with pg_db.session(readonly=True) as s:
        assert s.scalars(select(Counter.value)).one() == 200


def test_two_sqlite_workers_share_one_sequence_without_gaps(
    sqlite_db: Database, tmp_path: Path
) -> None:
    numbers = _race(f"sqlite:///{sqlite_db.url.database}", 2, 50)
    assert sorted(numbers) == list(range(1, 101))
    with sqlite_db.session(readonly=True) as s:
        assert s.scalars(select(Counter.value)).one() == 100
