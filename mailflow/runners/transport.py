"""The next hop for a reply: SMTP (plain, SSL, STARTTLS; password or XOAUTH2) or a folder of .eml files."""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from mailflow.config import Settings
from mailflow.errors import ConfigError
from mailflow.store.models import OutboxMessage

if TYPE_CHECKING:
    from mailflow.mail.oauth import TokenSource

CRLF = re.compile(rb"\r?\n")


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

    def send(self, row: OutboxMessage) -> str:
        """Hand `row` (its raw bytes, from_addr, to_addr) to the next hop; returns the answer as
        text. Raises on any failure (`is_permanent` tells a 5xx refusal from the rest)."""
        ...

    def close(self) -> None:
        """Release the connection (if any); the next `send` opens a new one. Never raises."""
        ...


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
        from mailflow.mail.oauth import xoauth2_string

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
        """Send `row` in one MAIL/RCPT/DATA transaction (connecting and logging in first when
        needed; line ends made CRLF); returns "250 aceptado". Raises smtplib.SMTPException or
        OSError (SMTPRecipientsRefused when the recipient is refused)."""
        if self.conn is None:
            self.conn = self._connect()
        wire = CRLF.sub(b"\r\n", row.raw)  # smtplib sends bytes as is; SMTP needs CRLF lines
        refused = self.conn.sendmail(row.from_addr, [row.to_addr], wire)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
        return "250 aceptado"

    def close(self) -> None:
        """QUIT the connection (or just drop it when that fails); never raises."""
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
        """Write `row.raw` to `<folder>/<id:08d>-<message-id>.eml` atomically (fsynced, then
        renamed; the same file again for the same row); returns "guardado en <path>". Raises
        OSError when the folder cannot be written."""
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
        """Nothing to release."""
        return None


def transport_for(settings: Settings, tokens: TokenSource | None = None) -> Transport | None:
    """SMTP when smtp.url is set, else the outbox folder when outbox_dir is set, else None.

    `tokens` is used for AUTH XOAUTH2 when smtp.auth is xoauth2 (see mailflow.mail.oauth).
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


def is_permanent(exc: BaseException) -> bool:
    """Whether the next hop refused for good: a 5xx reply (RFC 5321 §4.2.1), for the sender,
    the data or every recipient. Connection failures, timeouts and 4xx replies are temporary."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False
