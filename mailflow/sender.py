"""The sender: drains the outbox over SMTP (or into a folder) with retries, backoff and an audit."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from mailflow.audit import record
from mailflow.config import Settings
from mailflow.db import Database, claim_rows
from mailflow.delivery_events import on_accepted, on_bounced
from mailflow.errors import ConfigError
from mailflow.models import DeliveryAttempt, OutboxMessage

if TYPE_CHECKING:
    from mailflow.oauth import TokenSource

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
ERROR_CHARS = 2000
RECORD_TRIES = 5
RECORD_PAUSE_SECONDS = 0.2
CRLF = re.compile(rb"\r?\n")
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class SmtpTarget:
    """Where replies go: host, port, security (plain, ssl, starttls) and optional login."""

    host: str
    port: int
    security: str
    user: str | None
    password: str | None
    timeout: float = 30.0
    tokens: TokenSource | None = field(default=None, compare=False)
    """Set when smtp.auth is xoauth2: AUTH XOAUTH2 with a bearer token instead of a password."""


def parse_smtp_url(url: str, timeout: float = 30.0) -> SmtpTarget:
    """Read smtp://, smtps:// or smtp+starttls:// URLs (user:pass@ optional)."""
    parts = urlsplit(url)
    security = {"smtp": "plain", "smtps": "ssl", "smtp+starttls": "starttls"}.get(parts.scheme)
    if security is None:
        raise ConfigError(f"smtp.url: el esquema {parts.scheme!r} no es válido en {url!r}")
    default_port = {"plain": 25, "ssl": 465, "starttls": 587}[security]
    return SmtpTarget(
        host=parts.hostname or "localhost",
        port=parts.port or default_port,
        security=security,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )


class Transport(Protocol):
    """Hands one message to the next hop; returns the server's answer or raises."""

    def send(self, row: OutboxMessage) -> str: ...

    def close(self) -> None: ...


class SmtpTransport:
    """One SMTP connection reused for a batch; reconnects when the server dropped it."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        conn: smtplib.SMTP
        if t.security == "ssl":
            conn = smtplib.SMTP_SSL(
                t.host, t.port, timeout=t.timeout, context=ssl.create_default_context()
            )
        else:
            conn = smtplib.SMTP(t.host, t.port, timeout=t.timeout)
            if t.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
        if t.tokens is not None:
            self._xoauth2(conn, t.user or "", t.tokens)
        elif t.user:
            conn.login(t.user, t.password or "")
        return conn

    @staticmethod
    def _xoauth2(conn: smtplib.SMTP, user: str, tokens: TokenSource) -> None:
        """AUTH XOAUTH2 with the initial response (Google/Microsoft SMTP OAuth2 profile)."""
        from mailflow.oauth import xoauth2_string

        conn.ehlo_or_helo_if_needed()
        if not conn.has_extn("auth") or "XOAUTH2" not in conn.esmtp_features["auth"].upper():
            raise smtplib.SMTPNotSupportedError("el servidor SMTP no ofrece AUTH XOAUTH2")
        response = xoauth2_string(user, tokens.token())
        try:
            conn.auth("XOAUTH2", lambda challenge=None: response, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError:
            tokens.invalidate()  # revoked early: fetch a fresh token on the next try
            raise

    def send(self, row: OutboxMessage) -> str:
        if self.conn is None:
            self.conn = self._connect()
        wire = CRLF.sub(b"\r\n", row.raw)  # smtplib sends bytes as is; SMTP needs CRLF lines
        refused = self.conn.sendmail(row.from_addr, [row.to_addr], wire)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
        return "250 aceptado"

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


class FolderTransport:
    """Writes each message as an .eml file (the demo's captured mail); idempotent per row."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, row: OutboxMessage) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", row.message_id.strip("<>"))[:120]
        path = self.folder / f"{row.id:08d}-{name}.eml"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(row.raw)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        return f"guardado en {path}"

    def close(self) -> None:
        return None


def transport_for(settings: Settings, tokens: TokenSource | None = None) -> Transport | None:
    """SMTP when smtp.url is set, else the outbox folder when outbox_dir is set, else None.

    `tokens` is used for AUTH XOAUTH2 when smtp.auth is xoauth2 (see mailflow.oauth).
    """
    if settings.smtp.url:
        target = parse_smtp_url(settings.smtp.url, settings.smtp.timeout_seconds)
        if settings.smtp.auth == "xoauth2":
            if tokens is None:
                raise ConfigError("smtp.auth es xoauth2 pero falta la sección oauth2")
            target = replace(target, tokens=tokens)
        return SmtpTransport(target)
    if settings.outbox_dir is not None:
        return FolderTransport(settings.outbox_dir)
    return None


class SentJournal:
    """An append-only list of outbox ids the server accepted, written the moment it answers
    250: a crash before the database records "sent" (e.g. while waiting for SQLite's write lock)
    then no longer sends the reply twice; `replay` applies it at start-up.

    Group commit: `mark` writes the line with one `write(2)` to a file opened O_APPEND — in the
    kernel's page cache at once, so a killed process (SIGKILL) loses nothing — and `sync`
    fsyncs every line written since the last sync with one `fsync(2)` (power loss). The sender
    syncs before it records a batch, so one fsync (~0.3–5 ms on this disk) serves a batch,
    not each message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._marked: set[int] = set()  # accepted by the server in this process's lifetime
        self._fd = -1
        self._dirty = False

    def mark(self, row_id: int) -> None:
        """Append `row_id` (one write, kill-safe before returning; durable at `sync`).
        Called on the server's 250. Raises OSError when the journal cannot be written."""
        if self._fd < 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._fd, f"{row_id}\n".encode("ascii"))
        self._dirty = True
        self._marked.add(row_id)

    def sync(self) -> None:
        """fsync what `mark` wrote since the last sync (nothing to do when nothing was)."""
        if self._dirty and self._fd >= 0:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        """Sync and close the journal file (it is reopened by the next `mark`)."""
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)

    def accepted(self, row_id: int) -> bool:
        """Whether this process already had `row_id` accepted by the server (its recording in
        the database failed, and its lease ran out): it must be recorded, never sent again."""
        return row_id in self._marked

    def replay(self, db: Database, now: dt.datetime, settings: Settings | None = None) -> int:
        """Mark every journaled row sent (only while no other sender runs), then clear it;
        with `settings`, the acceptance reactions (delivery_events.on_accepted) run too."""
        self.close()
        if not self.path.exists():
            return 0
        ids = {int(x) for x in self.path.read_text(encoding="ascii").split() if x.isdigit()}
        fixed = 0
        with db.session() as session:
            for row_id in sorted(ids):
                row = session.get(OutboxMessage, row_id)
                if row is None or row.status in ("sent", "failed"):
                    continue
                row.status, row.sent_at, row.attempts = "sent", now, row.attempts + 1
                session.add(
                    DeliveryAttempt(
                        outbox_id=row.id,
                        at=now,
                        ok=True,
                        smtp_response=JOURNALED,
                    )
                )
                if settings is not None:
                    on_accepted(session, settings, row, now)
                fixed += 1
        self.path.unlink()
        return fixed


@dataclass
class SendStats:
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
    retried, failed) and the error texts. `tokens` (mailflow.oauth) logs in with XOAUTH2
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


JOURNALED = "aceptado (registrado en el diario)"


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


def is_permanent(exc: BaseException) -> bool:
    """Whether the next hop refused for good: a 5xx reply (RFC 5321 §4.2.1), for the sender,
    the data or every recipient. Connection failures, timeouts and 4xx replies are temporary."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


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
