"""The sent-journal: outbox ids the SMTP server accepted, kept on disk until the database records them."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from mailflow.cases.delivery_events import on_accepted
from mailflow.config import Settings
from mailflow.store.db import Database
from mailflow.store.models import DeliveryAttempt, OutboxMessage

JOURNALED = "aceptado (registrado en el diario)"
"""The smtp_response recorded for a row whose acceptance came from the journal."""


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
