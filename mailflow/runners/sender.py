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
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from mailflow.cases.delivery_events import on_accepted, on_bounced
from mailflow.config import Settings
from mailflow.runners.journal import JOURNALED, SentJournal
from mailflow.runners.transport import Transport, is_permanent, transport_for
from mailflow.store.audit import record
from mailflow.store.db import Database, claim_rows
from mailflow.store.models import DeliveryAttempt, OutboxMessage

if TYPE_CHECKING:
    from mailflow.mail.oauth import TokenSource

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
ERROR_CHARS = 2000
RECORD_TRIES = 5
RECORD_PAUSE_SECONDS = 0.2
Clock = Callable[[], dt.datetime]


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
    """Claim up to n pending rows due now (and "sending" rows whose lease ran out)."""
    with db.session() as session:
        stmt = (
            select(OutboxMessage)
            .where(
                or_(OutboxMessage.status == "pending", OutboxMessage.status == "sending"),
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(n)
        )
        rows = claim_rows(session, stmt)
        for row in rows:
            row.status = "sending"
            row.next_attempt_at = now + lease
        return [row.id for row in rows]


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
                now = clock()
                found = session.scalars(
                    select(OutboxMessage).where(OutboxMessage.id.in_(ids))
                ).all()
                rows = {row.id: row for row in found}
                for outcome in outcomes:
                    row = rows.get(outcome.row_id)
                    if row is not None:
                        _apply(settings, session, now, row, outcome, done)
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


def _apply(
    settings: Settings,
    session: Session,
    now: dt.datetime,
    row: OutboxMessage,
    outcome: _Outcome,
    stats: SendStats,
) -> None:
    """Record one try of `row` in `session`. A permanent refusal fails the row after
    `smtp.max_attempts` tries; a temporary one (server unreachable, 4xx) is retried with
    back-off capped at one hour until `smtp.retry_for_hours` have passed since the reply was
    queued. An acceptance runs delivery_events.on_accepted."""
    error, answer = outcome.error, outcome.answer
    if error is None and row.status == "sent":  # recorded already (by a retry)
        return
    row.attempts += 1
    session.add(
        DeliveryAttempt(
            outbox_id=row.id,
            at=now,
            ok=error is None,
            error=error[:ERROR_CHARS] if error else None,
            smtp_response=answer,
        )
    )
    if error is None:
        row.status = "sent"
        row.sent_at = now
        row.last_error = None
        on_accepted(session, settings, row, now)
        stats.sent += 1
        return
    row.last_error = error[:ERROR_CHARS]
    stats.errors.append(error)
    smtp = settings.smtp
    queued = _aware(row.created_at)
    expired = now - queued >= dt.timedelta(hours=smtp.retry_for_hours)
    if (outcome.permanent and row.attempts >= smtp.max_attempts) or (
        not outcome.permanent and expired
    ):
        row.status = "failed"
        stats.failed += 1
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
        return
    row.status = "pending"
    row.next_attempt_at = now + backoff(settings.smtp.retry_base_seconds, row.attempts)
    stats.retried += 1


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)  # SQLite drops the zone


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
