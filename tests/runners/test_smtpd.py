"""Inbound SMTP/LMTP: 250 only once the message is in the inbox; size limit; LMTP per recipient."""

from __future__ import annotations

import datetime as dt
import smtplib
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailflow.config import Settings
from mailflow.runners.smtpd import InboundServer, inbound_server
from mailflow.store.db import Database
from mailflow.store.models import InboxMessage
from tests.support.dovecot import free_port
from tests.support.mail_requests import DOMAIN, request

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def _server(db: Database, lmtp: bool) -> Iterator[InboundServer]:
    settings = Settings.model_validate(
        {
            "mailboxes": [{"name": "mesadepartes", "address": f"mesadepartes@{DOMAIN}"}],
            "inbound_smtp": {
                "enabled": True,
                "port": free_port(),
                "lmtp": lmtp,
                "max_message_bytes": 4096,
            },
        }
    )
    server = inbound_server(settings, db, lambda: NOW)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server(sqlite_db: Database) -> Iterator[InboundServer]:
    yield from _server(sqlite_db, lmtp=False)


@pytest.fixture
def lmtp_server(sqlite_db: Database) -> Iterator[InboundServer]:
    yield from _server(sqlite_db, lmtp=True)


def test_accepted_message_is_already_committed(
    smtp_server: InboundServer, sqlite_db: Database
) -> None:
    with smtplib.SMTP(smtp_server.hostname, smtp_server.port) as c:
        assert c.sendmail("p@example.org", [f"mesadepartes@{DOMAIN}"], request(3)) == {}
        with sqlite_db.session(readonly=True) as s:  # right after the 250, before QUIT
            row = s.scalars(select(InboxMessage)).one()
        assert (row.mailbox, row.source, row.status) == ("mesadepartes", "smtp", "new")
        assert (
            row.raw.replace(b"\r\n", b"\n").rstrip() == request(3).replace(b"\r\n", b"\n").rstrip()
        )
        c.sendmail("p@example.org", [f"mesadepartes@{DOMAIN}"], request(3))  # client retry
    with sqlite_db.session(readonly=True) as s:
        assert [r.status for r in s.scalars(select(InboxMessage))] == ["new", "duplicate"]


def test_too_big_is_refused_with_552(smtp_server: InboundServer, sqlite_db: Database) -> None:
    with (
        smtplib.SMTP(smtp_server.hostname, smtp_server.port) as c,
        pytest.raises(smtplib.SMTPException) as err,
    ):
        c.sendmail("p@example.org", [f"mesadepartes@{DOMAIN}"], request(1) + b"x" * 8000)
    assert "552" in str(err.value) and "5.3.4 Message too big" in str(err.value)
    with sqlite_db.session(readonly=True) as s:
        assert s.scalars(select(InboxMessage)).all() == []


def test_lmtp_answers_once_per_recipient(lmtp_server: InboundServer, sqlite_db: Database) -> None:
    with socket.create_connection((lmtp_server.hostname, lmtp_server.port), timeout=5) as sock:
        f = sock.makefile("rwb")

        def say(line: bytes) -> bytes:
            f.write(line + b"\r\n")
            f.flush()
            return f.readline()

        f.readline()
        f.write(b"LHLO test\r\n")
        f.flush()
        while not f.readline().startswith(b"250 "):
            pass
        assert say(b"MAIL FROM:<p@example.org>").startswith(b"250")
        assert say(f"RCPT TO:<mesadepartes@{DOMAIN}>".encode()).startswith(b"250")
        assert say(b"RCPT TO:<otro@example.org>").startswith(b"250")
        assert say(b"DATA").startswith(b"354")
        f.write(request(5).replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n") + b".\r\n")
        f.flush()
        replies = [f.readline(), f.readline()]
    assert all(r.startswith(b"250 ") for r in replies)
    assert b"mesadepartes@" in replies[0] and b"otro@example.org" in replies[1]
    with sqlite_db.session(readonly=True) as s:
        assert [r.source for r in s.scalars(select(InboxMessage))] == ["lmtp"]
