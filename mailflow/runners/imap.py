"""IMAP ingestion: fetch new mail by UID, store it durably, then move it to the processed folder."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailflow.config import Settings, imap_credentials
from mailflow.runners.inbox import known_uids, store_many
from mailflow.store.db import Database

if TYPE_CHECKING:
    from mailflow.mail.oauth import TokenSource

log = logging.getLogger(__name__)

FLAG_PROCESSED = b"$Mailflow"
IDLE_SLICE_SECONDS = 0.5  # how often a waiting IDLE checks the stop event
FIRST_BACKOFF_SECONDS = 0.2

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class ImapTarget:
    """One folder to read: where it is, how to log in, and what to do after storing."""

    mailbox: str
    folder: str
    host: str
    port: int
    ssl: bool
    user: str
    password: str
    processed_folder: str
    after_store: str
    batch_size: int
    idle: bool
    poll_seconds: float
    reconnect_max_seconds: float
    tokens: TokenSource | None = field(default=None, compare=False)
    """Set when imap.auth is xoauth2: log in with SASL XOAUTH2 instead of a password."""


def imap_targets(settings: Settings, tokens: TokenSource | None = None) -> list[ImapTarget]:
    """The folders to poll: one per configured mailbox when their folders differ, else one.

    The inbox key (`mailbox`) is the mailbox name for per-mailbox folders, or the folder name
    of MAILFLOW_IMAP_URL when one folder receives everything.
    """
    imap = settings.imap
    if not imap.url:
        return []
    host, port, use_ssl, user, password, folder = imap_credentials(imap.url)
    folders = {m.folder for m in settings.mailboxes}
    if len(settings.mailboxes) > 1 and len(folders) == len(settings.mailboxes):
        pairs = [(m.name, m.folder) for m in settings.mailboxes]
    else:
        pairs = [(folder, folder)]
    return [
        ImapTarget(
            mailbox=name,
            folder=fold,
            host=host,
            port=port,
            ssl=use_ssl,
            user=user,
            password=password,
            processed_folder=imap.processed_folder,
            after_store=imap.after_store,
            batch_size=imap.batch_size,
            idle=imap.idle,
            poll_seconds=imap.poll_seconds,
            reconnect_max_seconds=imap.reconnect_max_seconds,
            tokens=tokens if imap.auth == "xoauth2" else None,
        )
        for name, fold in pairs
    ]


class ImapPoller:
    """Reads one folder: drain what is there, then wait (IDLE or poll) and drain again."""

    def __init__(
        self,
        target: ImapTarget,
        db: Database,
        clock: Clock,
        on_stored: Callable[[int], None] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.target = target
        self.db = db
        self.clock = clock
        self.on_stored = on_stored
        self.timeout = timeout
        self.client: IMAPClient | None = None
        self.uidvalidity = 0

    def connect(self) -> IMAPClient:
        """Open a connection to the target, log in (password or XOAUTH2), create the processed
        folder when messages are moved there, select the folder and remember its UIDVALIDITY;
        returns the client (also kept in `self.client`). Raises IMAPClientError or OSError when
        the server cannot be reached or refuses the login (a refused XOAUTH2 token is dropped,
        so the next try fetches a fresh one)."""
        t = self.target
        client = IMAPClient(t.host, port=t.port, ssl=t.ssl, timeout=self.timeout)
        if t.tokens is not None:
            try:
                client.oauth2_login(t.user, t.tokens.token())
            except Exception as exc:
                with contextlib.suppress(Exception):
                    client.shutdown()
                if isinstance(exc, IMAPClientError):
                    t.tokens.invalidate()  # revoked early: fetch a fresh token on the next try
                raise
        else:
            client.login(t.user, t.password)
        if t.after_store != "flag" and not client.folder_exists(t.processed_folder):
            try:
                client.create_folder(t.processed_folder)
            except IMAPClientError:  # another worker created it meanwhile ([ALREADYEXISTS])
                if not client.folder_exists(t.processed_folder):
                    raise
        status = client.select_folder(t.folder)
        self.uidvalidity = int(status[b"UIDVALIDITY"])
        self.client = client
        return client

    def close(self) -> None:
        """Log out and forget the connection (nothing to do without one); a dead connection
        is just dropped. Never raises."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # a dead connection cannot log out: just drop the socket
            with contextlib.suppress(Exception):
                client.shutdown()

    def _pending_uids(self, client: IMAPClient) -> list[int]:
        if self.target.after_store == "flag":
            uids = client.search(["NOT", "KEYWORD", FLAG_PROCESSED.decode()])
        else:
            uids = client.search(["NOT", "DELETED"])
        return sorted(int(u) for u in uids)

    def drain(self) -> int:
        """Store every unprocessed message of the folder; return how many new rows were added.

        Each batch is committed to the inbox before the server copies are moved or flagged, so
        a crash in between leaves copies that the next drain recognises by UID and only moves.
        """
        client = self.client or self.connect()
        stored = 0
        while True:
            uids = self._pending_uids(client)
            if not uids:
                return stored
            for start in range(0, len(uids), self.target.batch_size):
                batch = uids[start : start + self.target.batch_size]
                stored += self._store_batch(client, batch)
                self._finish(client, batch)

    def _store_batch(self, client: IMAPClient, batch: list[int]) -> int:
        t = self.target
        with self.db.session(readonly=True) as session:
            known = known_uids(session, t.mailbox, self.uidvalidity, batch)
        fresh = [u for u in batch if u not in known]
        if not fresh:
            return 0
        fetched = client.fetch(fresh, ["BODY.PEEK[]", "RFC822.SIZE"])
        items = [
            (uid, bytes(data.get(b"BODY[]") or b""))
            for uid in fresh
            if (data := fetched.get(uid)) is not None  # None: expunged by someone else meanwhile
        ]
        with self.db.session() as session:
            rows = store_many(
                session,
                items,
                mailbox=t.mailbox,
                source="imap",
                uidvalidity=self.uidvalidity,
                now=self.clock(),
            )
            new_ids = [row.id for row in rows if row is not None and row.status == "new"]
        del fetched, items, rows  # bounded memory: one chunk at a time
        if self.on_stored is not None:
            for row_id in new_ids:
                self.on_stored(row_id)
        return len(new_ids)

    def _finish(self, client: IMAPClient, batch: list[int]) -> None:
        t = self.target
        if t.after_store == "flag":
            client.add_flags(batch, [b"\\Seen", FLAG_PROCESSED], silent=True)
        elif t.after_store == "move" and client.has_capability("MOVE"):
            try:
                client.move(batch, t.processed_folder)
            except IMAPClientError as exc:  # another process sharing the folder moved them
                if "EXPUNGEISSUED" not in str(exc):
                    raise
                log.info("IMAP %s: otro proceso ya movió parte del lote (%s)", t.folder, exc)
        else:
            client.copy(batch, t.processed_folder)
            client.add_flags(batch, [b"\\Deleted"], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(batch)
            else:
                client.expunge()

    def wait(self, stop: threading.Event) -> None:
        """Block until the server reports a change, the poll interval ends, or stop is set."""
        client = self.client or self.connect()
        deadline = time.monotonic() + self.target.poll_seconds
        if not (self.target.idle and client.has_capability("IDLE")):
            stop.wait(self.target.poll_seconds)
            client.noop()
            return
        if _saw_new_mail(client):  # announced while we were draining: drain again first
            return
        client.idle()
        try:
            if _saw_new_mail(client):  # announced just before the server's "+ idling"
                return
            while not stop.is_set() and time.monotonic() < deadline:
                if client.idle_check(timeout=IDLE_SLICE_SECONDS):
                    break
        finally:
            client.idle_done()

    def run(self, stop: threading.Event) -> None:
        """Drain and wait until stop is set; reconnect with exponential backoff on errors."""
        backoff = FIRST_BACKOFF_SECONDS
        while not stop.is_set():
            try:
                self.drain()
                backoff = FIRST_BACKOFF_SECONDS
                self.wait(stop)
            except Exception as exc:  # server gone, network, database: back off, retry
                log.warning(
                    "IMAP %s/%s: %s; reconnecting", self.target.host, self.target.folder, exc
                )
                self.close()
                stop.wait(backoff)
                backoff = min(backoff * 2, self.target.reconnect_max_seconds)
        self.close()


def _saw_new_mail(client: IMAPClient) -> bool:
    """Whether the server announced EXISTS/RECENT in a response imapclient kept aside.

    imaplib stores untagged responses that arrive with other commands; `idle()` also swallows
    one that arrives before the IDLE continuation. Without this check a message delivered in
    that window would wait for the poll interval instead of being fetched at once.
    """
    pending = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(pending, dict):
        return False
    found = False
    for key in ("EXISTS", "RECENT"):
        values = pending.pop(key, None) or []
        found = found or any(v not in (b"0", "0", 0) for v in values)
    return found


def drain_once(
    target: ImapTarget, db: Database, clock: Clock, on_stored: Callable[[int], None] | None = None
) -> int:
    """Connect, store and move everything waiting in one folder, log out; return new rows."""
    poller = ImapPoller(target, db, clock, on_stored)
    try:
        return poller.drain()
    finally:
        poller.close()
