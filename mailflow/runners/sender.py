"""The sender: drains the outbox over a transport with retries, backoff, a sent-journal and an audit.

The next hop is in `mailflow.runners.transport`, the crash-safe record of accepted replies in
`mailflow.runners.journal`; this module claims due rows, sends them in batches and records the results.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.exc import StaleDataError

from mailflow.cases.delivery_events import on_accepted, on_bounced, prepare_accepted
from mailflow.config import Settings
from mailflow.runners.journal import JOURNALED, SentJournal
from mailflow.runners.transport import Transport, is_permanent, transport_for
from mailflow.store.audit import record
from mailflow.store.db import Database
from mailflow.store.models import DeliveryAttempt, OutboxMessage

if TYPE_CHECKING:
    from mailflow.mail.oauth import TokenSource

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
ERROR_CHARS = 2000
RECORD_TRIES = 5
RECORD_PAUSE_SECONDS = 0.2
Clock = Callable[[], dt.datetime]
_OUTBOX = cast(Table, OutboxMessage.__table__)


@dataclass
class SendStats:
    """What one drain did: replies accepted (`sent`), put back for a later try (`retried`),
    given up (`failed`), and the error text of every failed try."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(base_seconds: float, attempts: int) -> dt.timedelta:
    """Wait before the next try: base × 2^(attempts-1), capped at one hour."""
    return dt.timedelta(seconds=min(MAX_BACKOFF_SECONDS, base_seconds * 2 ** max(attempts - 1, 0)))


def claim_due(db: Database, now: dt.datetime, n: int, lease: dt.timedelta) -> list[int]:
    """Claim up to n pending rows due now (and "sending" rows whose lease ran out): mark them
    "sending" until `now + lease`; returns their ids, earliest due first. Two statements on
    the connection (their ids, then one UPDATE), nothing of the rows loaded (the raw replies
    are read outside the write transaction). PostgreSQL: rows a concurrent claim holds are
    skipped (FOR UPDATE SKIP LOCKED); SQLite: the write transaction makes this the only
    writer."""
    c = _OUTBOX.c
    due = (
        select(c.id)
        .where(or_(c.status == "pending", c.status == "sending"), c.next_attempt_at <= now)
        .order_by(c.next_attempt_at, c.id)
        .limit(n)
    )
    with db.session() as session:
        connection = session.connection()
        if db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = [int(i) for i in connection.execute(due).scalars()]
        if ids:
            connection.execute(
                update(_OUTBOX)
                .where(c.id.in_(ids))
                .values(status="sending", next_attempt_at=now + lease)
            )
        return ids


def drain_outbox(
    settings: Settings,
    db: Database,
    clock: Clock,
    *,
    transport: Transport | None = None,
    batch: int = 50,
    should_stop: Callable[[], bool] | None = None,
    journal: SentJournal | None = None,
    tokens: TokenSource | None = None,
) -> SendStats:
    """Send every reply due now; failures are retried later, never lost.

    Replies are claimed `batch` at a time and sent over one SMTP session (one MAIL/RCPT/DATA
    transaction each; a failure closes it and the next reply reconnects); each accepted one is
    written to the `journal` the moment the server answers 250 (fsynced once per batch), and
    the batch's results are recorded together in one database transaction. Returns the counts (sent,
    retried, failed) and the error texts. `tokens` (mailflow.mail.oauth) logs in with XOAUTH2
    when smtp.auth is xoauth2.
    """
    stats = SendStats()
    transport = transport or transport_for(settings, tokens)
    if transport is None:
        return stats
    lease = dt.timedelta(seconds=settings.smtp.timeout_seconds * 4)
    try:
        while should_stop is None or not should_stop():
            ids = claim_due(db, clock(), batch, lease)
            if not ids:
                return stats
            _send_batch(settings, db, clock, transport, ids, stats, journal, lease)
        return stats
    finally:
        transport.close()


@dataclass(frozen=True)
class _Outcome:
    """One try of one row: the server's answer (accepted) or the error (not accepted)."""

    row_id: int
    answer: str | None
    error: str | None = None
    permanent: bool = False


def _send_batch(
    settings: Settings,
    db: Database,
    clock: Clock,
    transport: Transport,
    ids: list[int],
    stats: SendStats,
    journal: SentJournal | None,
    lease: dt.timedelta,
) -> None:
    """Send the claimed rows `ids` in order, then record every result in one transaction.

    Results are recorded earlier when a quarter of the lease has passed since the first
    unrecorded one (a slow or failing server), so no claim runs out before it is recorded."""
    with db.session(readonly=True) as session:
        loaded = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))).all()
    rows = {row.id: row for row in loaded}
    pending: list[_Outcome] = []
    first = 0.0
    for row_id in ids:
        row = rows.get(row_id)
        if row is None or row.status != "sending":
            continue
        if journal is not None and journal.accepted(row_id):  # sent before; recording failed
            pending.append(_Outcome(row_id, JOURNALED))
        else:
            pending.append(_try(transport, row, journal))
        if len(pending) == 1:
            first = time.monotonic()
        elif time.monotonic() - first >= lease.total_seconds() / 4:
            _record_batch(settings, db, clock, pending, stats, journal)
            pending = []
    if pending:
        _record_batch(settings, db, clock, pending, stats, journal)


def _try(transport: Transport, row: OutboxMessage, journal: SentJournal | None) -> _Outcome:
    """Hand `row` to the next hop; on a 250, journal it (written at once, fsynced with its
    batch) before anything else."""
    try:
        answer = transport.send(row)
    except Exception as exc:  # any failure of the next hop is a failed try, retried later
        transport.close()
        error = f"{type(exc).__name__}: {exc}"
        return _Outcome(row.id, None, error, is_permanent(exc))
    # The server has the message: recording that must survive a dropped database connection
    # or a kill, or the row stays "sending" and the reply goes out again when its lease runs out.
    if journal is not None:
        journal.mark(row.id)
    return _Outcome(row.id, answer)


def _record_batch(
    settings: Settings,
    db: Database,
    clock: Clock,
    outcomes: list[_Outcome],
    stats: SendStats,
    journal: SentJournal | None = None,
) -> None:
    """Record `outcomes` in one transaction, retrying it when the database connection drops or
    a case changed meanwhile; raises the last database error after RECORD_TRIES (accepted rows
    then stay "sending" and the sent-journal keeps them from going out again). `stats` counts
    only what was committed. The journal's lines for the batch are fsynced first (group
    commit)."""
    if journal is not None:
        journal.sync()
    ids = [o.row_id for o in outcomes]
    for attempt in range(RECORD_TRIES):
        done = SendStats()
        try:
            with db.session() as session:
                _record(settings, session, clock(), outcomes, done)
        except (SQLAlchemyError, StaleDataError):  # connection dropped, or a case changed
            if attempt == RECORD_TRIES - 1:
                raise
            log.warning("%d envíos; reintentando registrarlos en la base de datos", len(ids))
            time.sleep(RECORD_PAUSE_SECONDS * (attempt + 1))
            continue
        stats.sent += done.sent
        stats.retried += done.retried
        stats.failed += done.failed
        stats.errors += done.errors
        return


_ATTEMPTS = cast(Table, DeliveryAttempt.__table__)
_INSERT_ATTEMPTS = insert(_ATTEMPTS)
_FAILED_TRY = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("b_id"))
    .values(
        attempts=bindparam("b_attempts"),
        last_error=bindparam("b_last_error"),
        status=bindparam("b_status"),
        # a row given up keeps its next_attempt_at (None here), as the per-row code left it
        next_attempt_at=func.coalesce(
            bindparam("b_next", type_=_OUTBOX.c.next_attempt_at.type), _OUTBOX.c.next_attempt_at
        ),
    )
)


@dataclass
class _Try:
    """What recording one outcome writes to its outbox row (computed before any write)."""

    outcome: _Outcome
    attempts: int  # after this try
    status: str  # after this try: "sent", "pending" or "failed"
    next_attempt_at: dt.datetime | None = None  # a retried row's next try


def _record(
    settings: Settings,
    session: Session,
    now: dt.datetime,
    outcomes: list[_Outcome],
    stats: SendStats,
) -> None:
    """Record `outcomes` (one try each of distinct rows) in `session` at `now`, adding to
    `stats`: what `_apply` does for each outcome in turn, with set-based statements. The
    outbox rows and their delivery attempts are written first, with one statement each kind
    (nothing left pending in the session); then, on the rows loaded afresh and in the
    outcomes' order, each accepted row's reactions (delivery_events.on_accepted, each in its
    own savepoint, after delivery_events.prepare_accepted loaded what they read for the whole
    batch) and each given-up row's exception event and bounce reactions."""
    ids = [o.row_id for o in outcomes]
    c = _OUTBOX.c
    found = {
        r.id: r
        for r in session.connection().execute(
            select(c.id, c.status, c.attempts, c.created_at).where(c.id.in_(ids))
        )
    }
    smtp = settings.smtp
    tries: list[_Try] = []
    for outcome in outcomes:
        row = found.get(outcome.row_id)
        if row is None:
            continue
        if outcome.error is None:
            if row.status != "sent":  # else recorded already (by a retry)
                tries.append(_Try(outcome, row.attempts + 1, "sent"))
            continue
        attempts = row.attempts + 1
        # created_at is a UtcDateTime column: read back aware, SQLite included
        expired = now - row.created_at >= dt.timedelta(hours=smtp.retry_for_hours)
        if (outcome.permanent and attempts >= smtp.max_attempts) or (
            not outcome.permanent and expired
        ):
            tries.append(_Try(outcome, attempts, "failed"))
        else:
            next_at = now + backoff(smtp.retry_base_seconds, attempts)
            tries.append(_Try(outcome, attempts, "pending", next_at))
    if not tries:
        return
    connection = session.connection()
    connection.execute(
        _INSERT_ATTEMPTS,
        [
            {
                "outbox_id": t.outcome.row_id,
                "at": now,
                "ok": t.outcome.error is None,
                "error": t.outcome.error[:ERROR_CHARS] if t.outcome.error else None,
                "smtp_response": t.outcome.answer,
            }
            for t in tries
        ],
    )
    accepted = [t.outcome.row_id for t in tries if t.status == "sent"]
    if accepted:
        connection.execute(
            update(_OUTBOX)
            .where(c.id.in_(accepted))
            .values(status="sent", sent_at=now, last_error=None, attempts=c.attempts + 1)
        )
    failures = [t for t in tries if t.status != "sent"]
    if failures:
        connection.execute(
            _FAILED_TRY,
            [
                {
                    "b_id": t.outcome.row_id,
                    "b_attempts": t.attempts,
                    "b_last_error": (t.outcome.error or "")[:ERROR_CHARS],
                    "b_status": t.status,
                    "b_next": t.next_attempt_at,
                }
                for t in failures
            ],
        )
    follow = [t.outcome.row_id for t in tries if t.status != "pending"]
    rows: dict[int, OutboxMessage] = {}
    if follow:
        loaded = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(follow))
            .options(defer(OutboxMessage.raw))
        )
        rows = {row.id: row for row in loaded}
    prepare_accepted(session, settings, [rows[i] for i in accepted], now)
    for t in tries:
        if t.status == "sent":
            on_accepted(session, settings, rows[t.outcome.row_id], now)
            stats.sent += 1
            continue
        error = t.outcome.error or ""
        stats.errors.append(error)
        if t.status == "pending":
            stats.retried += 1
            continue
        stats.failed += 1
        _given_up(settings, session, now, rows[t.outcome.row_id], error)


def _given_up(
    settings: Settings, session: Session, now: dt.datetime, row: OutboxMessage, error: str
) -> None:
    """`row` (already marked "failed") will not be tried again: the exception event for staff,
    then delivery_events.on_bounced."""
    record(
        session,
        "exception",
        f"No se pudo enviar la respuesta «{row.subject}» a {row.to_addr} "
        f"tras {row.attempts} intentos: {error[:300]}. Puede reenviarse desde la "
        "bandeja o con «mailflow outbox retry».",
        at=now,
        case_id=row.case_id,
        inbox_message_id=row.inbox_message_id,
        data={"outbox_id": row.id, "attempts": row.attempts},
    )
    on_bounced(session, settings, row, now, f"se abandonó tras {row.attempts} intentos")


def next_due(db: Database) -> dt.datetime | None:
    """When the earliest pending reply is due (None if nothing waits)."""
    with db.session(readonly=True) as session:
        return session.scalar(
            select(OutboxMessage.next_attempt_at)
            .where(and_(OutboxMessage.status.in_(("pending", "sending"))))
            .order_by(OutboxMessage.next_attempt_at)
            .limit(1)
        )


def release_sending(db: Database, now: dt.datetime) -> int:
    """Make every "sending" row due again (only when no other sender runs on this database)."""
    with db.session() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "sending")).all()
        for row in rows:
            row.status = "pending"
            row.next_attempt_at = now
        return len(rows)
