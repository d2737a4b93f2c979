"""The batched engine: claim inbox rows in batches, read them concurrently outside any write
transaction, and write each batch in one transaction (a savepoint per message).

Reading batch k+1 (parse and decide in sandboxed children, `mailflow.runners.reading`) overlaps the
write of batch k. The engine is the layer that knows the pipeline; the inbox below it only
stores, claims and finishes rows with the `Handling` it is given.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailflow.runners.inbox import (
    Handling,
    Processor,
    Read,
    claim,
    custom_handling,
    write_batch,
)
from mailflow.runners.inbox import process_claimed as process_one
from mailflow.store.models import InboxMessage

if TYPE_CHECKING:
    from mailflow.app import App

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

BATCH_SIZE = 64
"""Inbox rows claimed and read together (one claim; one write transaction on SQLite)."""
READERS = 2
"""Messages read at once: threads, each waiting on its own sandbox child (GIL released)."""
TRANSACTION_SECONDS = 0.5
"""A write transaction is committed once it has run this long (the rest of the batch goes in
the next): SQLite has one writer at a time, and the desk, ingestion and the sender wait."""
PG_BATCH_SIZE = 16
"""Rows claimed at once on PostgreSQL, where several processes share the queue: smaller
batches keep them balanced to the end (a worker holding 2 × 64 rows finishes alone)."""
PG_MESSAGES_PER_TRANSACTION = 16
"""Messages per write transaction on PostgreSQL (one claimed batch). Every new case takes the
gap-free case-number counter's row lock until commit, so PostgreSQL workers queue on it
whatever the size of their transactions: one message per transaction only multiplied the
round trips and commits (2,000 requests, 1 / 2 processes: 101 / 101 msg/s with 1, 126 / 123
with 4, 145 / 136 with 16). A deadlock with another worker (PostgreSQL aborts one side) rolls
back only that message's savepoint; it is tried again, the try counted like any failure."""


def pipeline_handling(app: App) -> Handling:
    """The default processing: `pipeline.read_inbox_message` outside any transaction, then
    `pipeline.process_inbox_message` in the write transaction."""
    from mailflow.pipeline.route import process_inbox_message, read_inbox_message

    def read(row: InboxMessage, now: dt.datetime, session: Session | None) -> Any:
        return read_inbox_message(app, row, now, session)

    def write(session: Session, row: InboxMessage, now: dt.datetime, reading: Any) -> None:
        process_inbox_message(app, session, row, now, reading)

    return Handling(write, read)


def handling_for(app: App, process: Processor | None = None) -> Handling:
    """The custom `process` hook run whole in the transaction, or the default pipeline."""
    return pipeline_handling(app) if process is None else custom_handling(app, process)


def process_claimed(
    app: App, row_id: int, worker_id: str, now: dt.datetime, process: Processor | None = None
) -> str:
    """Process one claimed row on its own (read, then one write transaction); its status."""
    return process_one(app, row_id, worker_id, now, handling=handling_for(app, process))


@dataclass
class _Batch:
    """Claimed rows being read: `done` resolves once every row has its Read."""

    rows: list[InboxMessage]
    now: dt.datetime
    reads: dict[int, Read]
    done: list[Future[None]]

    def wait(self) -> list[tuple[int, Read]]:
        for future in self.done:
            try:
                future.result()
            except Exception as exc:  # the reader's session failed: unread rows count a try
                log.exception("reading a batch failed")
                for row in self.rows:
                    self.reads.setdefault(row.id, Read(error=exc))
        return [(row.id, self.reads[row.id]) for row in self.rows]


class Engine:
    """One worker's batched processing loop; `close()` it when done (reader threads).

    `batch` rows (default BATCH_SIZE, PG_BATCH_SIZE on PostgreSQL) are claimed and read
    together and written `per_transaction` at a time (default: the whole batch on SQLite,
    PG_MESSAGES_PER_TRANSACTION on PostgreSQL).
    `on_written(statuses)` is called after each batch is written (e.g. to wake the sender).
    """

    def __init__(
        self,
        app: App,
        worker_id: str,
        clock: Clock,
        process: Processor | None = None,
        *,
        batch: int | None = None,
        per_transaction: int | None = None,
        on_written: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.app = app
        self.worker_id = worker_id
        self.clock = clock
        postgres = app.database.dialect == "postgresql"
        if batch is None:
            batch = PG_BATCH_SIZE if postgres else BATCH_SIZE
        self.batch = max(1, batch)
        if per_transaction is None:
            per_transaction = PG_MESSAGES_PER_TRANSACTION if postgres else self.batch
        self.per_transaction = max(1, per_transaction)
        self.handling = handling_for(app, process)
        self.on_written = on_written
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the reader threads (after the batch in hand)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def drain(self, stop: threading.Event | None = None) -> tuple[int, int]:
        """Process batches until none waits (or `stop` is set, after the batch in hand);
        return (processed, set aside). Batch k+1 is claimed and read while batch k is written.
        """
        processed = aside = 0
        pending: _Batch | None = None
        while True:
            try:
                upcoming = None if stop is not None and stop.is_set() else self._start()
            except Exception:
                if pending is None:
                    raise
                # the batch in hand is claimed and read: write it before anything else, or
                # its rows would wait for their claims to run out (minutes)
                log.exception("claiming the next batch failed; writing the one in hand first")
                upcoming = None
            if pending is None and upcoming is None:
                return processed, aside
            if pending is not None:
                statuses = self._write(pending)
                processed += sum(s not in ("lost", "postponed") for s in statuses)
                aside += statuses.count("set_aside")
                if self.on_written is not None:
                    self.on_written(statuses)
            pending = upcoming

    def _start(self) -> _Batch | None:
        now = self.clock()
        rows = claim(self.app.database, self.worker_id, self.batch, now)
        if not rows:
            return None
        batch = _Batch(rows, now, {}, [])
        if self.handling.read is None:
            batch.reads.update((row.id, Read()) for row in rows)
            return batch
        if self._pool is None:
            self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="mailflow-reader")
        queue = deque(rows)
        for _ in range(min(READERS, len(rows))):
            batch.done.append(self._pool.submit(self._read_some, queue, batch))
        return batch

    def _read_some(self, queue: deque[InboxMessage], batch: _Batch) -> None:
        """Read rows from the shared queue until it is empty, in one read-only session."""
        read = self.handling.read
        assert read is not None
        with self.app.database.session(readonly=True) as session:
            while True:
                try:
                    row = queue.popleft()
                except IndexError:
                    return
                try:
                    batch.reads[row.id] = Read(read(row, batch.now, session))
                except Exception as exc:  # counted as a failed attempt when written
                    batch.reads[row.id] = Read(error=exc)

    def _write(self, batch: _Batch) -> list[str]:
        claimed = batch.wait()
        db, worker = self.app.database, self.worker_id
        # a row that failed before, or whose worker died holding it, goes alone: a message
        # that kills the process must not take a whole batch with it on every retry
        alone = {row.id for row in batch.rows if row.attempts > 0}
        together = [(i, r) for i, r in claimed if i not in alone]
        statuses: dict[int, str] = {}
        size = self.per_transaction
        for start in range(0, len(together), size):
            part = together[start : start + size]
            done = write_batch(
                db, part, worker, batch.now, self.handling, max_seconds=TRANSACTION_SECONDS
            )
            statuses.update(zip((i for i, _ in part), done, strict=True))
        for row_id, read in claimed:
            if row_id in alone:
                [statuses[row_id]] = write_batch(
                    db, [(row_id, read)], worker, batch.now, self.handling
                )
        return [statuses[row_id] for row_id, _ in claimed]
