"""First come, first served among the SQLite writers of one run (the engine and its companions).

SQLite has one write lock, and a writer that finds it taken sleeps in the busy handler with
growing pauses (up to 100 ms) before it tries again. The engine writes batch after batch, so
its companions (the sender claiming and recording replies, IMAP ingestion storing chunks)
found the lock free only by chance: replies waited behind the whole run (the sender drained at
a quarter of its speed). The turnstile gives every write transaction a ticket before its
BEGIN IMMEDIATE and lets it begin when its turn comes, so the lock passes from one writer to
the next in arrival order, within a millisecond.

It only orders: SQLite's lock still guarantees that writes never overlap. A writer whose turn
does not come within `wait_seconds` (a transaction left open, a process gone) begins anyway
and the busy handler decides as before. A turn ends when COMMIT or ROLLBACK is issued (the
next writer may wait a millisecond in the busy handler for it to finish). Shared memory created before the companions are
forked; readonly transactions take no ticket. PostgreSQL needs none (row locks).
"""

from __future__ import annotations

import multiprocessing
import time

POLL_SECONDS = 0.0005


class Turnstile:
    """Ticket order for write transactions (`store.db.Database.order_writes`): the processes
    that share it through fork take tickets from one counter in shared memory."""

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self._lock = multiprocessing.Lock()
        self._counters = multiprocessing.RawArray("q", 2)  # [next ticket, now serving]

    def take(self) -> int:
        """A new ticket, waiting until it is served (at most `wait_seconds`); returns it."""
        with self._lock:
            ticket = self._counters[0]
            self._counters[0] = ticket + 1
        deadline = time.monotonic() + self.wait_seconds
        while self._counters[1] < ticket and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        return ticket

    def done(self, ticket: int) -> None:
        """The transaction of `ticket` ended: serve the next one."""
        with self._lock:
            self._counters[1] = max(self._counters[1], ticket + 1)
