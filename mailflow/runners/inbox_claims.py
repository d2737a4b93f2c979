"""Claimed inbox rows: claim waiting rows for a worker, read and write them (one by one or in
batches, each in its own savepoint), count failed attempts and set aside the ones over their
retries. The layer above supplies the processing (`Handling`); see `mailflow.runners.inbox` for storing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from mailflow.errors import NotNow
from mailflow.store import coreflush
from mailflow.store.audit import record
from mailflow.store.db import Database, claim_rows
from mailflow.store.models import InboxMessage

if TYPE_CHECKING:
    from mailflow.app import App

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
DEFAULT_LEASE = dt.timedelta(minutes=5)
POSTPONE = dt.timedelta(minutes=1)
"""How long a row waits when the machine could not handle it (errors.NotNow)."""
ERROR_CHARS = 2000

Processor = Callable[["App", Session, InboxMessage, dt.datetime], None]


def claim(
    db: Database, worker_id: str, n: int, now: dt.datetime, lease: dt.timedelta = DEFAULT_LEASE
) -> list[InboxMessage]:
    """Claim up to n waiting rows (new, or processing with an expired lease) for this worker,
    oldest first, in one short transaction; return them detached (raw included), in id order.

    A row whose previous worker died holding it is claimed alone, so that a message that
    kills the process (a hard crash, memory) cannot take a batch down with it again and again;
    only a death while it was claimed alone counts as an attempt, and one that reaches
    MAX_ATTEMPTS is set aside (exception event) instead of being returned. Its batch-mates of
    the dead run are not suspects: each is retried alone once, without an attempt counted.
    PostgreSQL: rows locked by a concurrent claim are skipped (FOR UPDATE SKIP LOCKED), so
    workers get disjoint rows.
    """
    with db.session() as session:
        stmt = (
            select(InboxMessage)
            .where(
                or_(
                    InboxMessage.status == "new",
                    and_(
                        InboxMessage.status == "processing",
                        InboxMessage.claimed_until < now,
                    ),
                )
            )
            .order_by(InboxMessage.id)
            .limit(n)
        )
        rows: list[InboxMessage] = []
        for row in claim_rows(session, stmt):
            if row.status == "processing":  # its worker died holding it
                if row.claimed_alone:  # it was the only message in flight: that try counts
                    row.attempts += 1
                    if row.attempts >= MAX_ATTEMPTS:
                        _set_aside(session, row, now, row.last_error or "el proceso se interrumpió")
                        continue
                if rows:
                    continue  # claimed alone by a later claim
                _take(row, worker_id, now + lease, alone=True)
                return [row]
            _take(row, worker_id, now + lease, alone=False)
            rows.append(row)
        return rows


def _take(row: InboxMessage, worker_id: str, until: dt.datetime, *, alone: bool) -> None:
    row.status = "processing"
    row.claimed_by = worker_id
    row.claimed_until = until
    row.claimed_alone = alone


def claim_batch(
    db: Database, worker_id: str, n: int, now: dt.datetime, lease: dt.timedelta = DEFAULT_LEASE
) -> list[int]:
    """The ids of up to n rows claimed for this worker (see `claim`)."""
    return [row.id for row in claim(db, worker_id, n, now, lease)]


@dataclass(frozen=True)
class Read:
    """What reading one claimed row gave: `value` for the write step, or the `error` raised
    (the write step then counts the attempt instead of writing)."""

    value: Any = None
    error: Exception | None = None


ReadStep = Callable[[InboxMessage, dt.datetime, Session | None], Any]
"""Reads a claimed row outside any write transaction (may use the given read-only session)."""
WriteStep = Callable[[Session, InboxMessage, dt.datetime, Any], None]
"""Writes a row's effects in the caller's transaction, given what its ReadStep returned."""


@dataclass(frozen=True)
class Handling:
    """How claimed rows are processed: `read` (None: nothing to read first) runs with no write
    transaction open, then `write` runs inside the write transaction. The layer above (the
    service's engine) supplies them; the inbox only stores, claims and finishes rows."""

    write: WriteStep
    read: ReadStep | None = None


def custom_handling(app: App, process: Processor) -> Handling:
    """A Handling that runs `process(app, session, row, now)` whole inside the transaction."""

    def write(session: Session, row: InboxMessage, now: dt.datetime, _value: Any) -> None:
        process(app, session, row, now)

    return Handling(write)


def read_claimed(db: Database, handling: Handling, row: InboxMessage, now: dt.datetime) -> Read:
    """Run `handling.read` on one claimed row (no write transaction open); never raises."""
    if handling.read is None:
        return Read()
    try:
        return Read(handling.read(row, now, None))
    except Exception as exc:  # counted as a failed attempt by the write step
        return Read(error=exc)


def _finish_row(row: InboxMessage, now: dt.datetime) -> None:
    if row.status == "processing":
        row.status = "done"
    row.claimed_by = None
    row.claimed_until = None
    if row.processed_at is None:
        row.processed_at = now


def _mine(row: InboxMessage | None, worker_id: str) -> bool:
    return row is not None and row.status == "processing" and row.claimed_by == worker_id


def write_one(
    db: Database, row_id: int, read: Read, worker_id: str, now: dt.datetime, handling: Handling
) -> str:
    """Write one claimed row in its own transaction; return its resulting status.

    On an exception (in reading or writing) the transaction is rolled back and, in a new one,
    the attempt is counted and the error kept; after MAX_ATTEMPTS the row is set aside with an
    exception event for the staff queue. A row no longer claimed by this worker is left alone
    ("lost").
    """
    try:
        if read.error is not None:
            raise read.error
        with db.session() as session:
            row = session.get(InboxMessage, row_id)
            if row is None or not _mine(row, worker_id):
                return "lost"
            handling.write(session, row, now, read.value)
            _finish_row(row, now)
            return row.status
    except NotNow as exc:
        with db.session() as session:
            row = session.get(InboxMessage, row_id)
            if row is None or not _mine(row, worker_id):
                return "lost"
            return _postpone(row, now, exc)
    except Exception as exc:  # any failure is recorded, never propagated
        log.exception("inbox message %s failed", row_id)
        return _record_failure(db, row_id, worker_id, now, exc)


def write_batch(
    db: Database,
    claimed: Sequence[tuple[int, Read]],
    worker_id: str,
    now: dt.datetime,
    handling: Handling,
    *,
    max_seconds: float | None = None,
) -> list[str]:
    """Write many claimed rows in one transaction, each in its own savepoint; return their
    statuses in order ("done", "new", "set_aside", "lost", ...).

    A row whose reading or writing raises has only its savepoint rolled back: its attempt is
    counted and the error kept in the same transaction (set aside after MAX_ATTEMPTS), and the
    rest of the batch commits. Rows no longer claimed by this worker are left alone ("lost").
    With `max_seconds`, a transaction is committed once it has run that long and the rest go
    in the next one (other writers, such as the desk or ingestion, do not wait for a whole
    batch). When a transaction itself fails (commit, connection), nothing of it was written:
    each of its rows is then written in its own transaction (`write_one`), with its reading.
    """
    statuses: list[str] = []
    while len(statuses) < len(claimed):
        rest = claimed[len(statuses) :]
        done: list[str] = []
        try:
            _write_transaction(db, rest, worker_id, now, handling, max_seconds, done)
        except Exception:
            log.exception("a batch of inbox messages failed; writing them one by one")
            attempted = rest[: len(done) or len(rest)]
            done = [write_one(db, i, read, worker_id, now, handling) for i, read in attempted]
        statuses += done
    return statuses


def _write_transaction(
    db: Database,
    claimed: Sequence[tuple[int, Read]],
    worker_id: str,
    now: dt.datetime,
    handling: Handling,
    max_seconds: float | None,
    done: list[str],
) -> None:
    """Write a prefix of `claimed` (at least one row) in one transaction, appending each
    row's status to `done` as it is written (so a failed commit shows what it held)."""
    started = time.monotonic()
    with db.session() as session:
        ids = [row_id for row_id, _ in claimed]
        rows = {
            row.id: row
            for row in session.scalars(select(InboxMessage).where(InboxMessage.id.in_(ids)))
        }
        for row_id, read in claimed:
            if done and max_seconds is not None and time.monotonic() - started > max_seconds:
                break
            row = rows.get(row_id)
            if row is None or not _mine(row, worker_id):
                done.append("lost")
                continue
            done.append("")  # in progress: counted if the transaction fails now
            done[-1] = _write_in_savepoint(session, row, read, now, handling)


def _write_in_savepoint(
    session: Session, row: InboxMessage, read: Read, now: dt.datetime, handling: Handling
) -> str:
    """Write one row in a savepoint; a failure rolls back only that savepoint, counts the
    attempt and retries at once (as a lone worker would re-claim it first), up to
    MAX_ATTEMPTS, after which the row is set aside."""
    while True:
        try:
            if read.error is not None:
                raise read.error
            with session.begin_nested():
                handling.write(session, row, now, read.value)
                _finish_row(row, now)
                coreflush.flush(session)  # the claim's release: one UPDATE, no unit of work
            return row.status
        except NotNow as exc:  # the machine's trouble: wait, no attempt counted
            return _postpone(row, now, exc)
        except Exception as exc:  # this message's writes were rolled back; the batch goes on
            log.exception("inbox message %s failed", row.id)
            error = _error_text(exc)
            row.attempts += 1
            row.last_error = error
            if row.attempts >= MAX_ATTEMPTS:
                _set_aside(session, row, now, error)
                return row.status
            if read.error is not None and handling.read is not None:
                try:
                    read = Read(handling.read(row, now, None))
                except Exception as again:
                    read = Read(error=again)


def process_claimed(
    app: App,
    row_id: int,
    worker_id: str,
    now: dt.datetime,
    *,
    process: Processor | None = None,
    handling: Handling | None = None,
) -> str:
    """Process one claimed row on its own; return its resulting status.

    `handling` reads the row with no write transaction open, then writes its effects in one
    short transaction; a custom `process` instead runs whole inside that transaction. Failures
    are counted as in `write_one`; a row no longer claimed by this worker is "lost".
    """
    if handling is None:
        if process is None:
            raise TypeError("process_claimed needs a processor or a handling")
        handling = custom_handling(app, process)
    db = app.database
    if handling.read is None:
        return write_one(db, row_id, Read(), worker_id, now, handling)
    with db.session(readonly=True) as session:
        row = session.get(InboxMessage, row_id)
        if row is None or not _mine(row, worker_id):
            return "lost"
    return write_one(db, row_id, read_claimed(db, handling, row, now), worker_id, now, handling)


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]


def _count_failure(session: Session, row: InboxMessage, now: dt.datetime, error: str) -> None:
    row.attempts += 1
    row.last_error = error
    row.claimed_by = None
    row.claimed_until = None
    if row.attempts >= MAX_ATTEMPTS:
        _set_aside(session, row, now, error)
    else:
        row.status = "new"


def _record_failure(
    db: Database, row_id: int, worker_id: str, now: dt.datetime, exc: Exception
) -> str:
    with db.session() as session:
        row = session.get(InboxMessage, row_id)
        if row is None or row.claimed_by != worker_id:
            return "lost"
        _count_failure(session, row, now, _error_text(exc))
        return row.status


def _postpone(row: InboxMessage, now: dt.datetime, exc: NotNow) -> str:
    """Keep `row` claimed for POSTPONE (not alone, no attempt counted): when the claim runs out
    — or at the next run's start — it is claimed again, alone. Returns "postponed"."""
    log.warning("inbox message %s postponed: %s", row.id, exc)
    row.claimed_until = now + POSTPONE
    row.claimed_alone = False
    row.last_error = _error_text(exc)
    return "postponed"


def _set_aside(session: Session, row: InboxMessage, now: dt.datetime, error: str) -> None:
    row.status = "set_aside"
    row.disposition = "review"
    row.claimed_by = None
    row.claimed_until = None
    row.processed_at = now
    record(
        session,
        "exception",
        f"Error al procesar: {error} (tras {row.attempts} intentos)",
        at=now,
        case_id=row.case_id,
        inbox_message_id=row.id,
        data={"attempts": row.attempts, "error": error},
    )


def release_all_claims(db: Database, now: dt.datetime) -> int:
    """Return every row claimed by a dead run to the queue (only when no other worker runs).

    The try that died counts as an attempt; rows that reach MAX_ATTEMPTS are set aside.
    """
    with db.session() as session:
        result = session.execute(
            update(InboxMessage)
            .where(InboxMessage.status == "processing")
            .values(claimed_until=now - dt.timedelta(seconds=1))
        )
        return int(getattr(result, "rowcount", 0) or 0)


def waiting_count(db: Database) -> int:
    """How many rows wait to be processed (new or processing)."""
    with db.session(readonly=True) as session:
        value = session.scalar(
            select(func.count(InboxMessage.id)).where(
                InboxMessage.status.in_(("new", "processing"))
            )
        )
        return int(value or 0)
