"""Inbound SMTP/LMTP (aiosmtpd): answers 250 only after the message is committed to the inbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailflow.config import Settings
from mailflow.runners.inbox import store_raw
from mailflow.store.db import Database

log = logging.getLogger(__name__)

TOO_BIG = "552 5.3.4 Message too big"
Clock = Callable[[], dt.datetime]


def _rewrite(status: Any) -> Any:
    if isinstance(status, str) and status.startswith("552 Error"):
        return TOO_BIG  # aiosmtpd's own size refusals, in standard wording
    return status


class _SizedSMTP(SMTP):
    async def push(self, status: Any) -> None:
        await super().push(_rewrite(status))


class _SizedLMTP(LMTP):
    async def push(self, status: Any) -> None:
        await super().push(_rewrite(status))


class InboxHandler:
    """aiosmtpd handler that stores each message in the inbox before accepting it."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        lmtp: bool = False,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.lmtp = lmtp
        self.on_stored = on_stored
        self.max_bytes = settings.inbound_smtp.max_message_bytes
        self.mailboxes = {m.address.lower(): m.name for m in settings.mailboxes}

    def mailbox_for(self, rcpts: list[str]) -> str:
        """The name of the first of our mailboxes among the recipients (else the first one)."""
        for rcpt in rcpts:
            name = self.mailboxes.get(rcpt.lower())
            if name:
                return name
        return rcpts[0].lower() if rcpts else "smtp"

    def _store(self, raw: bytes, rcpts: list[str]) -> int | None:
        with self.db.session() as session:
            row = store_raw(
                session,
                raw,
                mailbox=self.mailbox_for(rcpts),
                source="lmtp" if self.lmtp else "smtp",
                now=self.clock(),
            )
            if row is None:
                return None
            session.flush()
            return row.id if row.status == "new" else None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd hook for one message: store it in the inbox (in a worker thread) and
        answer "250 2.0.0" (stored, or a duplicate), TOO_BIG ("552 5.3.4") over max_bytes, or
        "451 4.3.0" when storing failed so the client retries. LMTP: one line per recipient.
        """
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        rcpts = list(envelope.rcpt_tos)
        if len(raw) > self.max_bytes:
            return TOO_BIG
        try:
            row_id = await asyncio.to_thread(self._store, raw, rcpts)
        except Exception:  # storage failed: the client keeps the message and retries
            log.exception("inbound message could not be stored")
            return self._reply(rcpts, "451 4.3.0 No se pudo guardar el mensaje; reintente")
        if row_id is not None and self.on_stored is not None:
            self.on_stored(row_id)
        return self._reply(rcpts, "250 2.0.0 Mensaje recibido")

    def _reply(self, rcpts: list[str], line: str) -> str:
        if not self.lmtp:
            return line
        code, _, text = line.partition(" ")
        return "\r\n".join(f"{code} {text} <{r}>" for r in rcpts) or line


class InboundServer(Controller):
    """A threaded aiosmtpd server (SMTP or LMTP) feeding the inbox."""

    def __init__(self, handler: InboxHandler, host: str, port: int, max_bytes: int) -> None:
        super().__init__(handler, hostname=host, port=port, data_size_limit=max_bytes)
        self.inbox_handler = handler

    def factory(self) -> SMTP:
        """The aiosmtpd protocol instance per connection: SMTP or LMTP with the size limit enforced
        while the message arrives.
        """
        cls = _SizedLMTP if self.inbox_handler.lmtp else _SizedSMTP
        return cls(self.handler, **self.SMTP_kwargs)


def inbound_server(
    settings: Settings,
    db: Database,
    clock: Clock,
    on_stored: Callable[[int], None] | None = None,
) -> InboundServer:
    """Build (not start) the inbound server described by settings.inbound_smtp."""
    cfg = settings.inbound_smtp
    handler = InboxHandler(db, settings, clock, lmtp=cfg.lmtp, on_stored=on_stored)
    return InboundServer(handler, cfg.host, cfg.port, cfg.max_message_bytes)
