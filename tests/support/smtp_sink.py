"""A real SMTP server (aiosmtpd) capturing what mailflow sends, with a switch to refuse mail."""

from __future__ import annotations

import contextlib
import email
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, TypeVar

import pytest
from aiosmtpd.controller import Controller

from tests.support.dovecot import free_port

S = TypeVar("S", bound="SmtpSink")


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.raw)


@dataclass
class SmtpSink:
    """aiosmtpd handler: keeps every accepted message; `refuse = True` answers `refusal`
    (451, temporary, by default)."""

    refuse: bool = False
    refusal: str = "451 4.3.0 Servidor no disponible (prueba)"
    messages: list[Captured] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse:
                self.refused += 1
                return self.refusal
            self.messages.append(
                Captured(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)
                )
            )
        return "250 2.0.0 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def snapshot(self) -> list[Captured]:
        with self.lock:
            return list(self.messages)


@contextlib.contextmanager
def serving(sink: S) -> Iterator[S]:
    """Run an aiosmtpd Controller for `sink` (on `sink.port`) for the duration of the block."""
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with serving(SmtpSink(port=free_port())) as sink:
        yield sink
