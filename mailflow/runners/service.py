"""The service loop: ingest (IMAP, inbound SMTP), process the inbox, run timers, send replies."""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mailflow.runners.child import Channel, Child, ChildError, can_fork
from mailflow.runners.engine import TRANSACTION_SECONDS, Engine
from mailflow.runners.imap import ImapPoller, drain_once, imap_targets
from mailflow.runners.inbox import Processor, release_all_claims
from mailflow.runners.journal import SentJournal
from mailflow.runners.sender import SendStats, drain_outbox, release_sending
from mailflow.runners.smtpd import inbound_server
from mailflow.store.turnstile import Turnstile

if TYPE_CHECKING:
    from mailflow.app import App

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Sweep = Callable[["App", dt.datetime, str], Any]
IDLE_WAIT_SECONDS = 1.0
SEND_WAIT_SECONDS = 0.5
TURNSTILE_WAIT_SECONDS = 3 * TRANSACTION_SECONDS  # a turn that never comes: begin anyway
SEND_BATCH = 200  # replies claimed (and recorded) per write transaction while processing runs
DELIVERY_ROUNDS = 3  # oficio accepted → copy queued → copy accepted (rounds of sweep + send)


def utc_now() -> dt.datetime:
    """The current time as an aware UTC datetime (the service's default clock)."""
    return dt.datetime.now(dt.UTC)


def new_worker_id() -> str:
    """A worker id for claims: "host:pid:6 hex digits", unique per call."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class RunStats:
    """What one `run --once` did."""

    ingested: int = 0
    processed: int = 0
    set_aside: int = 0
    sent: int = 0  # replies accepted by the SMTP server (or written to outbox_dir)
    retried: int = 0
    failed: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)


class RunLock:
    """Every service process on one SQLite file holds this lock shared; the first one alone
    (exclusive) knows no one else is working, so claims left by a killed run can be released.
    PostgreSQL deployments rely on claim leases instead."""

    def __init__(self, app: App) -> None:
        db = app.database
        self.file: IO[bytes] | None = None
        if db.dialect == "sqlite" and db.url.database not in (None, "", ":memory:"):
            self.path: Path | None = Path(f"{db.url.database}.run.lock")
        else:
            self.path = None

    def acquire(self) -> bool:
        """Take the lock; True when this process is alone (orphaned claims may be released)."""
        if self.path is None:
            return False
        self.file = self.path.open("ab")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        fcntl.flock(self.file, fcntl.LOCK_SH)
        return alone

    def release(self) -> None:
        """Drop the lock (closing its file); nothing to do when it is not held."""
        if self.file is not None:
            self.file.close()
            self.file = None


def sent_journal(app: App) -> SentJournal:
    """The sent-journal of this data directory (`data_dir/sent.journal`; not opened yet)."""
    return SentJournal(app.settings.data_dir / "sent.journal")


def recover(app: App, lock: RunLock, now: dt.datetime) -> int:
    """Release claims left by killed runs when no other process works on this database."""
    if not lock.acquire():
        return 0
    db = app.database
    sent_journal(app).replay(db, now, app.settings)
    return release_all_claims(db, now) + release_sending(db, now)


def process_waiting(
    app: App,
    clock: Clock,
    worker_id: str,
    process: Processor | None = None,
    stop: threading.Event | None = None,
) -> tuple[int, int]:
    """Process inbox rows in batches until none waits; return (processed, set aside)."""
    engine = Engine(app, worker_id, clock, process)
    try:
        return engine.drain(stop)
    finally:
        engine.close()


def default_sweep(app: App, now: dt.datetime, worker_id: str) -> Any:
    """Fire every timer due at `now` (aware datetime) as `worker_id`: `sweep.run_sweep`, whose
    result it returns."""
    from mailflow.runners.sweep import run_sweep

    return run_sweep(app, now, worker_id)


def delivery_sweep(app: App, now: dt.datetime, worker_id: str) -> int:
    """Fire only the delivery-accepted timers (the sender's follow-up; the rest is the
    scheduler leader's)."""
    from mailflow.cases.delivery_events import DELIVERY_ACCEPTED
    from mailflow.runners.sweep import run_sweep

    return run_sweep(app, now, worker_id, (DELIVERY_ACCEPTED,))


def _add_sent(total: SendStats, more: SendStats) -> None:
    total.sent += more.sent
    total.retried += more.retried
    total.failed += more.failed
    total.errors += more.errors


def ingest_all(app: App, now_fn: Clock, on_stored: Callable[[int], None]) -> tuple[int, list[str]]:
    """Drain every configured IMAP folder once, one after the other, calling `on_stored(row id)`
    for each new inbox row; returns (rows stored, errors in words). An unreachable server is
    reported in the errors and the other folders are still read."""
    stored, errors = 0, []
    for target in imap_targets(app.settings, app.mail_tokens):
        try:
            stored += drain_once(target, app.database, now_fn, on_stored)
        except Exception as exc:  # unreachable server: report, still do the rest
            errors.append(f"IMAP {target.host}/{target.folder}: {exc}")
    return stored, errors


def send_until_done(app: App, now_fn: Clock, wait: Callable[[float], bool]) -> SendStats:
    """Drain the outbox, then `wait(seconds)` for the next written batch, again and again; once
    `wait` returns True (processing has ended) one last drain, then return what was sent."""
    total, last = SendStats(), False
    while True:
        more = drain_outbox(
            app.settings,
            app.database,
            now_fn,
            batch=SEND_BATCH,
            journal=sent_journal(app),
            tokens=app.mail_tokens,
        )
        _add_sent(total, more)
        if last:
            return total
        last = wait(SEND_WAIT_SECONDS)


class _Overlap:
    """The work of one `run --once` beside the processing loop: IMAP ingestion (one folder
    after the other, storing chunk by chunk) and a sender draining the outbox while later
    messages are processed. With `processes` (where `child.can_fork()`) both run in forked
    companions on the other core, else in threads; their errors are kept for the main thread.
    """

    def __init__(self, app: App, now_fn: Clock, stats: RunStats, *, processes: bool) -> None:
        self.app = app
        self.now_fn = now_fn
        self.stats = stats
        self.stored = threading.Event()  # a chunk was stored: there is something to claim
        self.ingested = threading.Event()  # every folder drained (or failed)
        self.written = threading.Event()  # a batch was written: replies may wait
        self.processed = threading.Event()  # processing finished: one last drain, then stop
        self.sent = SendStats()
        self.failure: BaseException | None = None
        self.sender: Child | None = None
        self.ingester: Child | None = None
        self.turnstile: Turnstile | None = None
        ingest = self._ingest
        if processes and can_fork():
            if app.database.dialect == "sqlite":  # one write lock: pass it on in arrival order
                self.turnstile = Turnstile(TURNSTILE_WAIT_SECONDS)
                app.database.order_writes(self.turnstile)  # the companions inherit it
            try:  # both forked before any thread of the run starts
                self.ingester = Child("ingesta", app, self._ingest_in_child)
                self.ingester.start()
                ingest = self._relay_ingest
                self.sender = Child("envío", app, self._send_in_child)
                self.sender.start()
            except OSError as exc:  # no fork (out of processes or memory): threads, as before
                log.warning("sin procesos auxiliares (%s): ingesta y envío en hilos", exc)
                self.sender = None
        self.threads = [threading.Thread(target=ingest, name="mailflow-ingest", daemon=True)]
        if self.sender is None:
            self.threads.append(
                threading.Thread(target=self._send, name="mailflow-send", daemon=True)
            )
        for thread in self.threads:
            thread.start()

    def on_written(self) -> None:
        """A batch was committed: wake the sender."""
        if self.sender is not None:
            self.sender.send("escrito")
        else:
            self.written.set()

    def _ingest(self) -> None:
        try:
            stored, errors = ingest_all(self.app, self.now_fn, lambda _id: self.stored.set())
            self.stats.ingested += stored
            self.stats.errors += errors
        finally:
            self.ingested.set()
            self.stored.set()

    def _ingest_in_child(self, channel: Channel) -> tuple[int, list[str]]:
        return ingest_all(self.app, self.now_fn, lambda _id: channel.send("guardado"))

    def _relay_ingest(self) -> None:
        assert self.ingester is not None
        try:
            while not self.ingester.finished:
                if self.ingester.receive(IDLE_WAIT_SECONDS):
                    self.stored.set()
            stored, errors = self.ingester.result()
            self.stats.ingested += stored
            self.stats.errors += errors
        except ChildError as exc:
            self.stats.errors.append(f"IMAP: {exc}")
        finally:
            self.ingested.set()
            self.stored.set()

    def _send(self) -> None:
        def wait(seconds: float) -> bool:
            self.written.wait(seconds)
            self.written.clear()
            return self.processed.is_set()

        try:
            _add_sent(self.sent, send_until_done(self.app, self.now_fn, wait))
        except BaseException as exc:  # raised again in the main thread, as before
            self.failure = exc

    def _send_in_child(self, channel: Channel) -> SendStats:
        ended = False

        def wait(seconds: float) -> bool:
            nonlocal ended
            try:
                ended = ended or "fin" in channel.receive(seconds)
            except EOFError:  # the run closed its end: no more batches will come
                ended = True
            return ended

        return send_until_done(self.app, self.now_fn, wait)

    def process(self, engine: Engine) -> tuple[int, int]:
        """Process what is stored until ingestion has ended and nothing waits."""
        done = aside = 0
        while True:
            finished = self.ingested.is_set()  # read before draining: nothing stored after
            self.stored.clear()
            d, a = engine.drain()
            done, aside = done + d, aside + a
            if finished:
                return done, aside
            self.stored.wait(IDLE_WAIT_SECONDS)

    def finish(self) -> SendStats:
        """Let the sender do its last drain, wait for ingestion and the sender; what the sender
        sent. Raises what the sender raised (ChildError for a companion)."""
        self.processed.set()
        self.written.set()
        if self.sender is not None:
            self.sender.send("fin")
        try:
            for thread in self.threads:
                thread.join()
            if self.sender is not None:
                _add_sent(self.sent, self.sender.result())
        finally:
            if self.turnstile is not None:  # the companions are gone: no one to take turns with
                self.app.database.order_writes(None)
        if self.failure is not None:
            raise self.failure
        return self.sent


def run_once(
    app: App,
    now_fn: Clock = utc_now,
    *,
    process: Processor | None = None,
    sweep: Sweep | None = default_sweep,
    processes: bool = False,
) -> RunStats:
    """Ingest what waits on IMAP, process every waiting message, run the sweep, send, return.

    Ingestion stores chunks that processing claims at once; a sender sends replies while
    later messages are processed. Both are threads, or with `processes` (what `mailflow run
    --once` uses) forked companions on the other core (`runners.child`). Returns when
    everything waiting has been ingested, processed, swept and sent.
    """
    stats = RunStats()
    worker_id = new_worker_id()
    lock = RunLock(app)
    try:
        stats.recovered = recover(app, lock, now_fn())
        overlap = _Overlap(app, now_fn, stats, processes=processes)
        engine = Engine(app, worker_id, now_fn, process, on_written=lambda _s: overlap.on_written())
        try:
            stats.processed, stats.set_aside = overlap.process(engine)
            if sweep is not None:
                sweep(app, now_fn(), worker_id)
                done, aside = engine.drain()
                stats.processed += done
                stats.set_aside += aside
        finally:
            engine.close()
            sent = overlap.finish()
        _add_sent(
            sent,
            drain_outbox(
                app.settings,
                app.database,
                now_fn,
                journal=sent_journal(app),
                tokens=app.mail_tokens,
            ),
        )
        # an accepted oficio queues the applicant's copy (via a delivery timer): follow the
        # chain to its end so one run delivers the whole product
        for _ in range(DELIVERY_ROUNDS):
            if sweep is None or not sweep(app, now_fn(), worker_id):
                break
            _add_sent(
                sent,
                drain_outbox(
                    app.settings,
                    app.database,
                    now_fn,
                    journal=sent_journal(app),
                    tokens=app.mail_tokens,
                ),
            )
        stats.sent, stats.retried, stats.failed = sent.sent, sent.retried, sent.failed
        for error in sent.errors[:5]:
            log.warning("envío pendiente de reintento: %s", error)
    finally:
        lock.release()
    return stats


def _bind(fn: Callable[[threading.Event], None], stop: threading.Event) -> Callable[[], None]:
    return lambda: fn(stop)


def _loop(name: str, target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def run_forever(
    app: App,
    stop: threading.Event,
    *,
    workers: int = 1,
    clock: Clock = utc_now,
    process: Processor | None = None,
    scheduler: bool = True,
) -> None:
    """Run every part of the service until `stop` is set, then shut down gracefully."""
    settings, db = app.settings, app.database
    lock = RunLock(app)
    recover(app, lock, clock())
    wake_process, wake_send = threading.Event(), threading.Event()
    journal = sent_journal(app)
    sender_id = new_worker_id()
    threads: list[threading.Thread] = []

    def on_stored(_row_id: int) -> None:
        wake_process.set()

    def work() -> None:
        engine = Engine(app, new_worker_id(), clock, process, on_written=lambda _: wake_send.set())
        try:
            while not stop.is_set():
                wake_process.clear()
                try:
                    engine.drain(stop)
                except Exception:  # database trouble: wait and try again
                    log.exception("processing loop")
                wake_process.wait(IDLE_WAIT_SECONDS)
        finally:
            engine.close()

    def send() -> None:
        while not stop.is_set():
            wake_send.clear()
            try:
                sent = drain_outbox(
                    settings,
                    db,
                    clock,
                    should_stop=stop.is_set,
                    journal=journal,
                    tokens=app.mail_tokens,
                )
                if sent.sent and scheduler and delivery_sweep(app, clock(), sender_id):
                    continue  # accepted products fired their next step: send what it queued
            except Exception:
                log.exception("sender loop")
            wake_send.wait(SEND_WAIT_SECONDS)

    for target in imap_targets(settings, app.mail_tokens):
        poller = ImapPoller(target, db, clock, on_stored)
        threads.append(_loop(f"imap-{target.mailbox}", _bind(poller.run, stop)))
    server = None
    if settings.inbound_smtp.enabled:
        server = inbound_server(settings, db, clock, on_stored)
        server.start()
    for i in range(max(1, workers)):
        threads.append(_loop(f"worker-{i}", work))
    threads.append(_loop("sender", send))
    sched = None
    if scheduler:
        from mailflow.runners.sweep import build_scheduler

        sched = build_scheduler(app)
        sched.start()
    try:
        stop.wait()
    finally:
        stop.set()
        if server is not None:
            server.stop()
        if sched is not None:
            sched.shutdown(wait=False)
        for thread in threads:
            thread.join(timeout=30)
        lock.release()
